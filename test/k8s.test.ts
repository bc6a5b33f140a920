import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as coreV1 from 'kubernetes-models/v1';
import { createApp } from '../coordinator/app.ts';
import { parseJobConfig } from '../coordinator/config.ts';
import { Hub } from '../coordinator/hub.ts';
import { createMetrics } from '../coordinator/metrics.ts';
import { secretProblem } from '../runtime/node/placeholder-secrets.ts';
import { ROOT } from './helpers/processes.ts';

/*
 * Renders every overlay with `kubectl kustomize` and checks the result the way
 * a cluster would (each object against the Kubernetes API schema) and the way
 * Tessera needs it: selectors, ports, probes on routes the coordinator really
 * serves, references to Secrets and ConfigMaps, the autoscaler's target and
 * metric, the disruption budget, the GPU request.
 */

const OVERLAYS = ['cpu', 'gpu', 'cluster'] as const;
/**
 * Where the overlays differ in what every check below asks: the worker image; the coordinator's kind (a StatefulSet
 * on its checkpoint volume, or a Deployment with the job in JetStream, --store nats); NATS's clients.
 */
const EXPECTED = {
  cpu: { workerImage: 'worker-cpu', coordinatorKind: 'StatefulSet', natsClients: ['coordinator', 'worker'] },
  gpu: { workerImage: 'worker-gpu', coordinatorKind: 'StatefulSet', natsClients: ['coordinator', 'worker'] },
  cluster: { workerImage: 'worker-cpu', coordinatorKind: 'Deployment', natsClients: ['aggregator', 'coordinator', 'worker'] },
} as const;
/** KUBECTL picks another binary (e.g. to check an old kustomize); any kubectl >= 1.20 works. */
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

// Plain objects as the YAML parser returns them; the schema check below is what vouches for their shape.
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
};
type Labels = Record<string, string>;

/** Schema classes by apiVersion, then kind: an object of any other kind fails the test until it is added here. */
const SCHEMAS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'autoscaling/v2': autoscalingV2,
  'networking.k8s.io/v1': networkingV1,
  'policy/v1': policyV1,
};

function validationError(object: K8sObject): string | undefined {
  const Model = SCHEMAS[object.apiVersion]?.[object.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) return `${object.kind}/${object.metadata.name}: no schema for ${object.apiVersion} ${object.kind} (add its kubernetes-models module to SCHEMAS)`;
  try {
    new Model(object).validate();
    return undefined;
  } catch (error) {
    return `${object.kind}/${object.metadata.name}: ${(error as Error).message}`;
  }
}

function kubectlVersion(): string {
  const result = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(
      `kubectl is needed to render k8s/ (kubectl kustomize) and was not found as ${JSON.stringify(KUBECTL)}` +
        ` (${result.error?.message ?? result.stderr.trim()}). Install it: apt-get install kubernetes-client` +
        ' (Debian; scripts/test.sh does this when kubectl is missing), or set KUBECTL to its path.',
    );
  }
  return result.stdout.trim().split('\n')[0];
}

function render(overlay: string): K8sObject[] {
  const result = spawnSync(KUBECTL, ['kustomize', join(ROOT, 'k8s', 'overlays', overlay)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`kubectl kustomize k8s/overlays/${overlay} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((document) => document.toJSON() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null);
}

const isSubset = (selector: Labels, labels: Labels | undefined) => Object.entries(selector).every(([key, value]) => labels?.[key] === value);
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job']);

/** The rendered objects of one overlay, with the look-ups every check needs. */
class Rendered {
  constructor(readonly objects: K8sObject[]) {}

  ofKind(kind: string): K8sObject[] {
    return this.objects.filter((object) => object.kind === kind);
  }

  get(kind: string, name: string): K8sObject | undefined {
    return this.objects.find((object) => object.kind === kind && object.metadata.name === name);
  }

  get workloads(): K8sObject[] {
    return this.objects.filter((object) => WORKLOAD_KINDS.has(object.kind));
  }

  /** The workloads whose pods carry every label of `selector`. */
  selected(selector: Labels): K8sObject[] {
    return this.workloads.filter((workload) => isSubset(selector, workload.spec.template.metadata.labels));
  }

  byComponent(component: string): K8sObject {
    const found = this.workloads.filter((workload) => workload.spec.template.metadata.labels?.['app.kubernetes.io/component'] === component);
    expect(
      found.map((workload) => workload.metadata.name),
      `workloads of component ${component}`,
    ).toHaveLength(1);
    return found[0];
  }
}

/** Containers of a workload's pod template, init containers included. */
const containersOf = (workload: K8sObject): any[] => [...(workload.spec.template.spec.initContainers ?? []), ...workload.spec.template.spec.containers];

/** Whether a port reference (a name or a number) names a port a container declares. */
function declaresPort(containers: any[], port: string | number): boolean {
  return containers.some((container) =>
    (container.ports ?? []).some((declared: any) => (typeof port === 'string' ? declared.name === port : declared.containerPort === port)),
  );
}

/** The number of a named container port of a workload. */
function containerPort(workload: K8sObject, name: string): number | undefined {
  return containersOf(workload)
    .flatMap((container) => container.ports ?? [])
    .find((port: any) => port.name === name)?.containerPort;
}

/** GET routes of the coordinator's app, without parameters: what a probe can hit. */
function coordinatorRoutes(): Set<string> {
  const hub = new Hub({ defaultJobId: 'default', heartbeatMs: 10_000 });
  const app = createApp(hub, { adminToken: 'unused', createJob: async () => Promise.reject(new Error('not in this test')) });
  return new Set(app.routes.filter((route) => route.method === 'GET' && !route.path.includes(':') && !route.path.includes('*')).map((route) => route.path));
}

/** Runs `compute` once and remembers its result or its error: without kubectl every test fails with the same message, none is skipped. */
function once<T>(compute: () => T): () => T {
  let outcome: { value: T } | { error: unknown } | undefined;
  return () => {
    if (!outcome) {
      try {
        outcome = { value: compute() };
      } catch (error) {
        outcome = { error };
      }
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  };
}

const kubectl = once(kubectlVersion);
const renderings = new Map(OVERLAYS.map((overlay) => [overlay, once(() => new Rendered((kubectl(), render(overlay))))]));
let routes: Set<string>;

beforeAll(() => {
  routes = coordinatorRoutes();
});

describe.each(OVERLAYS)('k8s/overlays/%s', (overlay) => {
  const objects = renderings.get(overlay)!;
  const facts = EXPECTED[overlay];

  it('renders, and every object is valid against the Kubernetes API schema', () => {
    const kinds = objects().objects.map((object) => `${object.kind}/${object.metadata.name}`);
    console.log(`${overlay} (${kubectl()}): ${kinds.join(', ')}`);
    for (const expected of [
      'StatefulSet/nats',
      'Service/nats',
      'Service/nats-headless',
      `${facts.coordinatorKind}/coordinator`,
      'Service/coordinator',
      'Ingress/coordinator',
      'Deployment/worker',
      'HorizontalPodAutoscaler/worker',
      'PodDisruptionBudget/worker',
    ]) {
      expect(kinds).toContain(expected);
    }
    expect(objects().objects.map(validationError).filter(Boolean)).toEqual([]);
  });

  it('gives every workload a selector that matches its own pod template and no other workload', () => {
    for (const workload of objects().workloads) {
      const selector = workload.spec.selector.matchLabels as Labels;
      expect(Object.keys(selector).length, `${workload.metadata.name} selector`).toBeGreaterThan(0);
      expect(workload.spec.selector.matchExpressions, `${workload.metadata.name} uses matchLabels only`).toBeUndefined();
      expect(
        objects()
          .selected(selector)
          .map((selected) => selected.metadata.name),
      ).toEqual([workload.metadata.name]);
    }
    for (const statefulSet of objects().ofKind('StatefulSet')) {
      expect(objects().get('Service', statefulSet.spec.serviceName), `service of StatefulSet ${statefulSet.metadata.name}`).toBeDefined();
      const mounted = containersOf(statefulSet).flatMap((container) => (container.volumeMounts ?? []).map((mount: any) => mount.name));
      for (const claim of statefulSet.spec.volumeClaimTemplates ?? []) expect(mounted).toContain(claim.metadata.name);
    }
  });

  it('points every Service at pods that declare its target ports', () => {
    for (const service of objects().ofKind('Service')) {
      const pods = objects().selected(service.spec.selector ?? {});
      expect(pods.length, `pods selected by Service ${service.metadata.name}`).toBeGreaterThan(0);
      for (const port of service.spec.ports) {
        const target = port.targetPort ?? port.port;
        for (const workload of pods)
          expect(
            declaresPort(containersOf(workload), target),
            `Service ${service.metadata.name} port ${port.name} -> ${workload.metadata.name}:${target}`,
          ).toBe(true);
      }
    }
    const ingress = objects().get('Ingress', 'coordinator')!;
    for (const rule of ingress.spec.rules) {
      for (const path of rule.http.paths) {
        const service = objects().get('Service', path.backend.service.name);
        expect(service, `Ingress backend ${path.backend.service.name}`).toBeDefined();
        const { name, number } = path.backend.service.port;
        expect(
          service!.spec.ports.some((port: any) => (name ? port.name === name : port.port === number)),
          `Ingress backend port ${name ?? number}`,
        ).toBe(true);
      }
    }
  });

  it('probes the coordinator on routes it serves, and every probe on a declared port or a shipped script', () => {
    const coordinator = objects().byComponent('coordinator');
    const probed: string[] = [];
    for (const workload of objects().workloads) {
      for (const container of containersOf(workload)) {
        for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
          const probe = container[kind];
          if (!probe) continue;
          if (probe.httpGet) {
            expect(declaresPort([container], probe.httpGet.port), `${workload.metadata.name} ${kind} port ${probe.httpGet.port}`).toBe(true);
            if (workload === coordinator) {
              expect(routes, `the coordinator serves GET ${probe.httpGet.path}`).toContain(probe.httpGet.path);
              probed.push(`${kind} ${probe.httpGet.path}`);
            }
          }
          if (probe.exec) {
            // A script the probe runs must exist, and every image that could run this container must ship it.
            for (const script of probe.exec.command.filter((part: string) => part.startsWith('deploy/'))) {
              expect(existsSync(join(ROOT, script)), `${script} exists`).toBe(true);
              for (const dockerfile of ['deploy/worker-cpu.Dockerfile', 'deploy/worker-gpu.Dockerfile']) {
                expect(readFileSync(join(ROOT, dockerfile), 'utf8'), `${dockerfile} copies ${script}`).toContain(`COPY ${script}`);
              }
            }
          }
        }
      }
    }
    // Ready on /health with one coordinator; on /readyz with a leader and a standby (the standby answers it 503).
    const readiness = overlay === 'cluster' ? 'readinessProbe /readyz' : 'readinessProbe /health';
    expect(probed).toEqual(expect.arrayContaining(['livenessProbe /health', readiness]));
  });

  it('resolves every Secret key and ConfigMap the pods refer to', () => {
    for (const workload of objects().workloads) {
      const pod = workload.spec.template.spec;
      for (const container of containersOf(workload)) {
        for (const variable of container.env ?? []) {
          const ref = variable.valueFrom?.secretKeyRef;
          if (!ref) continue;
          const secret = objects().get('Secret', ref.name);
          expect(secret, `Secret ${ref.name} for ${workload.metadata.name} ${variable.name}`).toBeDefined();
          expect(Object.keys(secret!.data ?? {}), `key ${ref.key} in Secret ${ref.name}`).toContain(ref.key);
        }
      }
      for (const volume of pod.volumes ?? []) {
        if (volume.configMap) expect(objects().get('ConfigMap', volume.configMap.name), `ConfigMap ${volume.configMap.name}`).toBeDefined();
        if (volume.secret) expect(objects().get('Secret', volume.secret.secretName), `Secret ${volume.secret.secretName}`).toBeDefined();
      }
    }
    // The workers never get the admin token.
    const worker = objects().byComponent('worker');
    const workerSecrets = containersOf(worker)
      .flatMap((container) => (container.env ?? []).map((variable: any) => variable.valueFrom?.secretKeyRef?.key))
      .filter(Boolean);
    expect(workerSecrets).not.toContain('TESSERA_ADMIN_TOKEN');
  });

  it("serves NATS with the project's own deploy/nats.conf", () => {
    const nats = objects().byComponent('nats');
    const volume = nats.spec.template.spec.volumes.find((candidate: any) => candidate.configMap);
    const configMap = objects().get('ConfigMap', volume.configMap.name)!;
    expect(configMap.data['nats.conf']).toBe(readFileSync(join(ROOT, 'deploy', 'nats.conf'), 'utf8'));
  });

  it('scales the worker Deployment on a metric the coordinator exports, for the job it runs', () => {
    const hpa = objects().get('HorizontalPodAutoscaler', 'worker')!;
    const worker = objects().byComponent('worker');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: worker.metadata.name });
    expect(worker.kind).toBe('Deployment');
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(1);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);

    const exported = createMetrics(new Hub({ defaultJobId: 'default', heartbeatMs: 10_000 })).registry;
    const metricNames = hpa.spec.metrics.map((metric: any) => metric[metric.type.charAt(0).toLowerCase() + metric.type.slice(1)].metric.name);
    expect(metricNames).toContain('tessera_worker_utilization_ratio');
    for (const name of metricNames) expect(exported.getSingleMetric(name), `coordinator/metrics.ts exports ${name}`).toBeDefined();

    // The metric's job_id, the workers' --job and the coordinator's job config name the same job.
    const jobConfigMap = objects().objects.find((object) => object.kind === 'ConfigMap' && object.data?.['job.json'])!;
    const job = parseJobConfig(JSON.parse(jobConfigMap.data['job.json']));
    const external = hpa.spec.metrics.find((metric: any) => metric.type === 'External').external;
    expect(external.metric.selector.matchLabels.job_id).toBe(job.id);
    const args: string[] = worker.spec.template.spec.containers[0].args;
    expect(args[args.indexOf('--job') + 1]).toBe(job.id);
    const coordinator = objects().byComponent('coordinator');
    expect(coordinator.spec.template.spec.containers[0].args.slice(0, 2)).toEqual(['--config', '/etc/tessera/job.json']);
    expect(coordinator.spec.template.spec.volumes.find((volume: any) => volume.configMap?.name === jobConfigMap.metadata.name)).toBeDefined();
    // Checkpoints go to the claimed volume.
    const runsMount = coordinator.spec.template.spec.containers[0].volumeMounts.find((mount: any) => mount.name === 'runs');
    expect(job.output.dir).toBe(runsMount.mountPath);

    // Workers get a round's deadline (plus time to send) to finish their update when they are stopped.
    const grace = worker.spec.template.spec.terminationGracePeriodSeconds;
    expect(grace).toBeGreaterThanOrEqual(job.training.roundDeadlineMs / 1000 + 10);
  });

  it('leaves the replica count of every Deployment an autoscaler targets to the autoscaler', () => {
    const hpas = objects().ofKind('HorizontalPodAutoscaler');
    expect(hpas.length).toBeGreaterThan(0);
    for (const hpa of hpas) {
      const { kind, name } = hpa.spec.scaleTargetRef;
      const target = objects().get(kind, name);
      expect(target, `target ${kind}/${name} of HorizontalPodAutoscaler/${hpa.metadata.name}`).toBeDefined();
      // A `replicas` here would reset the fleet to it at every `kubectl apply -k`.
      expect(target!.spec.replicas, `${kind}/${name} sets replicas`).toBeUndefined();
    }
  });

  it('lets into each component only the peers its NetworkPolicy names, and every policy and peer selects pods that exist', () => {
    const policies = objects().ofKind('NetworkPolicy');
    for (const workload of objects().workloads) {
      expect(
        policies.filter((policy) => isSubset(policy.spec.podSelector.matchLabels, workload.spec.template.metadata.labels)).length,
        `NetworkPolicy for ${workload.metadata.name}`,
      ).toBeGreaterThan(0);
    }
    for (const policy of policies) {
      const targets = objects().selected(policy.spec.podSelector.matchLabels);
      expect(targets.length, `pods of NetworkPolicy ${policy.metadata.name}`).toBeGreaterThan(0);
      expect(policy.spec.policyTypes).toContain('Ingress');
      for (const rule of policy.spec.ingress ?? []) {
        // An empty peer list would let in everyone: each rule names its peers.
        expect(rule.from?.length, `NetworkPolicy ${policy.metadata.name}: a rule without peers`).toBeGreaterThan(0);
        for (const peer of rule.from) {
          expect(peer.ipBlock, `NetworkPolicy ${policy.metadata.name} admits an IP block`).toBeUndefined();
          if (!peer.namespaceSelector)
            expect(
              objects().selected(peer.podSelector.matchLabels).length,
              `peer ${JSON.stringify(peer.podSelector.matchLabels)} of ${policy.metadata.name}`,
            ).toBeGreaterThan(0);
        }
        for (const { port } of rule.ports) {
          if (typeof port === 'string')
            for (const workload of targets)
              expect(declaresPort(containersOf(workload), port), `${policy.metadata.name}: ${workload.metadata.name} declares port ${port}`).toBe(true);
        }
      }
    }

    // NATS: clients from the coordinator and the workers only, monitoring (no authentication) from Prometheus's namespace only.
    const nats = objects().byComponent('nats');
    const natsPolicies = policies.filter((policy) => isSubset(policy.spec.podSelector.matchLabels, nats.spec.template.metadata.labels));
    const peersFor = (portName: string) =>
      natsPolicies.flatMap((policy) =>
        (policy.spec.ingress ?? [])
          .filter((rule: any) => rule.ports.some((port: any) => port.port === portName || port.port === containerPort(nats, portName)))
          .flatMap((rule: any) => rule.from),
      );
    const components = (peers: any[]) =>
      peers
        .map((peer) =>
          peer.namespaceSelector
            ? `namespace ${JSON.stringify(peer.namespaceSelector.matchLabels)}`
            : objects()
                .selected(peer.podSelector.matchLabels)
                .map((workload) => workload.spec.template.metadata.labels['app.kubernetes.io/component'])
                .join(),
        )
        .sort();
    expect(components(peersFor('client'))).toEqual(facts.natsClients);
    expect(components(peersFor('monitor'))).toEqual(['namespace {"kubernetes.io/metadata.name":"monitoring"}']);
    // The workers serve nothing.
    const worker = objects().byComponent('worker');
    const workerRules = policies
      .filter((policy) => isSubset(policy.spec.podSelector.matchLabels, worker.spec.template.metadata.labels))
      .flatMap((policy) => policy.spec.ingress ?? []);
    expect(workerRules).toEqual([]);
  });

  it('keeps most workers through voluntary disruptions', () => {
    const pdb = objects().get('PodDisruptionBudget', 'worker')!;
    expect(
      objects()
        .selected(pdb.spec.selector.matchLabels)
        .map((workload) => workload.metadata.name),
    ).toEqual([objects().byComponent('worker').metadata.name]);
    expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
  });

  it('runs every container as non-root with requests and limits', () => {
    for (const workload of objects().workloads) {
      expect(workload.spec.template.spec.securityContext?.runAsNonRoot, `${workload.metadata.name} runAsNonRoot`).toBe(true);
      for (const container of containersOf(workload)) {
        for (const resource of ['cpu', 'memory']) {
          expect(container.resources?.requests?.[resource], `${container.name} requests ${resource}`).toBeDefined();
          expect(container.resources?.limits?.[resource], `${container.name} limits ${resource}`).toBeDefined();
        }
        expect(container.securityContext?.allowPrivilegeEscalation, `${container.name} allowPrivilegeEscalation`).toBe(false);
      }
    }
  });

  it('lets WebSockets and server-sent events through the Ingress', () => {
    const annotations = objects().get('Ingress', 'coordinator')!.metadata.annotations!;
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(600);
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(600);
    expect(annotations['nginx.ingress.kubernetes.io/proxy-body-size']).toBeDefined();
    expect(annotations['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
  });

  it(`runs the ${overlay} worker image${overlay === 'gpu' ? ' with one NVIDIA GPU per worker, on GPU nodes' : ' without GPUs'}`, () => {
    const worker = objects().byComponent('worker');
    const [container] = worker.spec.template.spec.containers;
    expect(container.image).toMatch(new RegExp(`^tessera/${facts.workerImage}:`));
    expect(objects().byComponent('coordinator').spec.template.spec.containers[0].image).toMatch(/^tessera\/coordinator:/);
    const gpus = container.resources.limits['nvidia.com/gpu'];
    if (overlay === 'gpu') {
      expect(Number(gpus)).toBe(1);
      expect(worker.spec.template.spec.nodeSelector ?? {}).toHaveProperty(['nvidia.com/gpu.present']);
      expect(worker.spec.template.spec.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'nvidia.com/gpu' })]));
    } else {
      expect(gpus).toBeUndefined();
      expect(JSON.stringify(objects().objects)).not.toContain('nvidia.com/gpu');
    }
  });
});

describe('k8s/overlays/cluster (issue #16: NATS cluster with JetStream, coordinator on --store nats, aggregators)', () => {
  const objects = renderings.get('cluster')!;

  it('renders, every object valid against the Kubernetes API schema, all in the namespace', () => {
    expect(objects().objects.map(validationError).filter(Boolean)).toEqual([]);
    const namespaced = objects().objects.filter((object) => object.kind !== 'Namespace');
    expect(namespaced.filter((object) => object.metadata.namespace !== 'tessera').map((object) => `${object.kind}/${object.metadata.name}`)).toEqual([]);
    // Every Service, PodDisruptionBudget and NetworkPolicy selects pods of some workload.
    for (const object of [...objects().ofKind('Service'), ...objects().ofKind('PodDisruptionBudget'), ...objects().ofKind('NetworkPolicy')]) {
      const selector = object.spec.selector?.matchLabels ?? object.spec.selector ?? object.spec.podSelector?.matchLabels;
      expect(objects().selected(selector), `${object.kind}/${object.metadata.name} selects a workload`).not.toHaveLength(0);
    }
  });

  it('runs three NATS servers on deploy/nats-cluster.conf, each with its own JetStream volume, and keeps two through a drain', () => {
    const nats = objects().byComponent('nats');
    expect(nats.kind).toBe('StatefulSet');
    expect(nats.spec.replicas).toBe(3);
    const container = nats.spec.template.spec.containers[0];
    expect(container.args).toEqual(['--config', '/etc/nats/nats-cluster.conf']);
    const configMount = container.volumeMounts.find((mount: any) => mount.mountPath === '/etc/nats/nats-cluster.conf');
    const configVolume = nats.spec.template.spec.volumes.find((volume: any) => volume.name === configMount.name);
    const configMap = objects().get('ConfigMap', configVolume.configMap.name)!;
    expect(configMap.data['nats-cluster.conf']).toBe(readFileSync(join(ROOT, 'deploy', 'nats-cluster.conf'), 'utf8'));
    // The config's routes name the StatefulSet's pods behind its headless Service, on the port the pods declare.
    const headless = objects().get('Service', nats.spec.serviceName)!;
    expect(headless.spec.clusterIP).toBe('None');
    expect(headless.spec.ports.map((port: any) => port.port)).toContain(6222);
    expect(containerPort(nats, 'cluster')).toBe(6222);
    for (let i = 0; i < 3; i++) expect(configMap.data['nats-cluster.conf']).toContain(`nats-route://${nats.metadata.name}-${i}.${headless.metadata.name}:6222`);
    const env = Object.fromEntries(container.env.map((variable: any) => [variable.name, variable.value ?? variable.valueFrom?.fieldRef?.fieldPath]));
    expect(env).toMatchObject({ TESSERA_NATS_SERVER_NAME: 'metadata.name', TESSERA_NATS_STORE_DIR: '/data/jetstream' });
    const [claim] = nats.spec.volumeClaimTemplates;
    expect(container.volumeMounts.find((mount: any) => mount.name === claim.metadata.name).mountPath).toBe('/data');
    expect(nats.spec.template.spec.securityContext.fsGroup).toBe(1000);
    const pdb = objects()
      .ofKind('PodDisruptionBudget')
      .find((budget) => isSubset(budget.spec.selector.matchLabels, nats.spec.template.metadata.labels))!;
    expect(pdb.spec.minAvailable).toBe(2);
  });

  it("probes the NATS servers as the NATS helm chart does: liveness never on the meta leader's presence", () => {
    const [container] = objects().byComponent('nats').spec.template.spec.containers;
    const paths = Object.fromEntries(['startupProbe', 'livenessProbe', 'readinessProbe'].map((kind) => [kind, container[kind].httpGet.path]));
    // Plain /healthz fails without a meta leader: as liveness it would restart the last server standing.
    expect(paths).toEqual({ startupProbe: '/healthz', livenessProbe: '/healthz?js-enabled-only=true', readinessProbe: '/healthz?js-server-only=true' });
    // Time for a restarted server to catch its stream replicas up before the kubelet gives up on it.
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(600);
  });

  it('runs the coordinator as a Deployment on --store nats, with no volume claim: a leader and a standby, only the leader ready', () => {
    const coordinator = objects().byComponent('coordinator');
    expect(coordinator.kind).toBe('Deployment');
    expect(coordinator.spec.replicas).toBe(2);
    expect(coordinator.spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    expect(coordinator.spec.template.spec.containers[0].readinessProbe.httpGet.path).toBe('/readyz');
    expect(coordinator.spec.volumeClaimTemplates).toBeUndefined();
    expect(coordinator.spec.template.spec.volumes.some((volume: any) => volume.persistentVolumeClaim)).toBe(false);
    expect(coordinator.spec.template.spec.containers[0].args).toEqual(['--config', '/etc/tessera/job.json', '--store', 'nats']);
    expect(coordinator.spec.template.spec.containers[0].env.find((variable: any) => variable.name === 'TESSERA_NATS_URL').value).toBe('nats://nats:4222');
    expect(
      objects()
        .ofKind('StatefulSet')
        .map((set) => set.metadata.name),
    ).toEqual(['nats']);
  });

  it('signs join links with a key from a Secret, not one each pod makes on its emptyDir', () => {
    const [container] = objects().byComponent('coordinator').spec.template.spec.containers;
    const ref = container.env.find((variable: any) => variable.name === 'TESSERA_JOIN_KEY')?.valueFrom?.secretKeyRef;
    expect(ref, 'TESSERA_JOIN_KEY from a Secret').toBeDefined();
    const value = Buffer.from(objects().get('Secret', ref.name)!.data[ref.key], 'base64').toString();
    // A placeholder the coordinator refuses to start on, as the base's secrets are.
    expect(secretProblem(value)).toMatch(/placeholder/);
  });

  it('runs aggregators for the job of job.json, scaled by their own autoscaler, allowed into NATS only', () => {
    const aggregator = objects().byComponent('aggregator');
    expect(aggregator.kind).toBe('Deployment');
    expect(aggregator.spec.replicas).toBeUndefined();
    const container = aggregator.spec.template.spec.containers[0];
    expect(container.command).toEqual(['node', '--import', 'tsx', 'aggregator/main.ts']);
    const jobConfigMap = objects().objects.find((object) => object.kind === 'ConfigMap' && object.data?.['job.json'])!;
    expect(container.args[container.args.indexOf('--job') + 1]).toBe(parseJobConfig(JSON.parse(jobConfigMap.data['job.json'])).id);
    const hpa = objects().get('HorizontalPodAutoscaler', 'aggregator')!;
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: aggregator.metadata.name });
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    const natsPolicy = objects().get('NetworkPolicy', 'nats')!;
    const clientPeers = natsPolicy.spec.ingress.find((rule: any) => rule.ports.some((port: any) => port.port === 'client')).from;
    expect(clientPeers.map((peer: any) => peer.podSelector.matchLabels['app.kubernetes.io/component']).sort()).toEqual(['aggregator', 'coordinator', 'worker']);
    expect(objects().get('NetworkPolicy', 'aggregator')!.spec.ingress).toEqual([]);
  });
});

describe('deploy/*.Dockerfile', () => {
  it.each([
    ['coordinator', 'coordinator/main.ts'],
    ['worker-cpu', 'worker/main.ts'],
    ['worker-gpu', 'worker/main.ts'],
  ])('%s copies every folder its entry point imports from', async (name, entry) => {
    const { build } = await import('esbuild');
    // esbuild walks the import graph (packages left out: npm installs them); each top-level folder must be copied.
    const result = await build({
      entryPoints: [join(ROOT, entry)],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'silent',
      absWorkingDir: ROOT,
    });
    const folders = new Set(Object.keys(result.metafile.inputs).map((input) => input.split('/')[0]));
    const dockerfile = readFileSync(join(ROOT, 'deploy', `${name}.Dockerfile`), 'utf8');
    for (const folder of folders) expect(dockerfile, `${name}.Dockerfile copies ${folder}/`).toMatch(new RegExp(`^COPY ${folder} \\./${folder}$`, 'm'));
  });

  it.each(['coordinator', 'worker-cpu', 'worker-gpu'])('%s builds on an exact Node 22 release, with a digest ARG to pin the image', (name) => {
    const dockerfile = readFileSync(join(ROOT, 'deploy', `${name}.Dockerfile`), 'utf8');
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=22\.\d+\.\d+$/m);
    expect(dockerfile).toMatch(/^ARG NODE_DIGEST=$/m);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\$\{NODE_VERSION\}-[a-z]+-slim\$\{NODE_DIGEST\}$/m);
    // Every stage starts from an ARG, so the digest reaches all of them.
    for (const [, image] of dockerfile.matchAll(/^FROM (\S+)/gm)) expect(image, `FROM ${image}`).toMatch(/^\$\{(NODE|CUDA)_IMAGE\}$/);
  });
});
