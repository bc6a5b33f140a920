import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

const COMMON = {
  quick: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

/**
 * A benchmark's command line: its own options plus --quick (the short run
 * `npm run bench -- --quick` asks for) and --help, which prints the usage and
 * exits. Unknown options are errors, so a typo does not start the long default.
 */
export function benchOptions<const Options extends OptionsConfig>(usage: string, options: Options) {
  const { values } = parseArgs<{ options: Options & typeof COMMON; strict: true }>({ options: { ...options, ...COMMON }, strict: true });
  // The generic values type does not narrow to COMMON's keys inside this function; they are there.
  if ((values as { help?: boolean }).help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return values;
}
