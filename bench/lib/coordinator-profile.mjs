/**
 * A CPU profile of the coordinator a bench starts (`--cpu-prof` is refused in
 * NODE_OPTIONS, `--import` is not):
 *
 *   NODE_OPTIONS="--import ./bench/lib/coordinator-profile.mjs" npx tsx bench/coordinator-overhead.ts ...
 *
 * Every Node process of the run loads this; only the one running
 * coordinator/main.ts profiles itself (the inspector's Profiler, 1 ms
 * sampling) and writes coordinator-<pid>.cpuprofile into TESSERA_PROFILE_DIR
 * (default: the system's temporary folder) when it exits or is stopped.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (process.argv.some((arg) => arg.endsWith('coordinator/main.ts'))) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  let saved = false;
  const save = () => {
    if (saved) return;
    saved = true;
    // The main thread's session answers synchronously, so this also works inside an exit handler.
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      writeFileSync(join(process.env.TESSERA_PROFILE_DIR ?? tmpdir(), `coordinator-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.on('exit', save);
  process.on('SIGTERM', save);
  process.on('SIGINT', save);
}
