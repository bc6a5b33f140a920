/** The parts of a JSON Schema in /api/openapi.json that name keys. */
interface KeyedSchema {
  $ref?: string;
  type?: string | string[];
  oneOf?: KeyedSchema[];
  properties?: Record<string, KeyedSchema>;
  required?: string[];
  items?: KeyedSchema;
}

interface Document {
  components: { schemas: Record<string, unknown> };
}

/** A schema with its `$ref` followed (to #/components/schemas/NAME), or a schema's name. */
const resolve = (document: Document, schema: KeyedSchema | string): KeyedSchema =>
  typeof schema === 'string' || schema.$ref
    ? (document.components.schemas[typeof schema === 'string' ? schema : schema.$ref!.split('/').at(-1)!] as KeyedSchema)
    : schema;

/** The JSON type of a value, as a schema's `type` names it. */
const jsonType = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'number' ? 'number' : typeof value);

/** False when the schema's `type` rules the value out (an integer is a number here: only keys are compared). */
function typeAllows(schema: KeyedSchema, value: unknown): boolean {
  const types = schema.type === undefined ? undefined : [schema.type].flat().map((type) => (type === 'integer' ? 'number' : type));
  return !types || types.includes(jsonType(value));
}

/**
 * Where an API answer and a schema of the OpenAPI document disagree on keys: a key the answer has and the schema
 * does not name, or a key the schema requires and the answer lacks, each with its path (`$.lastRound.excluded`).
 * Values are not checked (the types in shared/api/ do that on both sides); only that the document names what the
 * API really sends. Free-form objects (no `properties`) are not looked into; of `oneOf`, the closest branch counts.
 */
export function keyMismatches(document: Document, named: KeyedSchema | string, value: unknown, path = '$'): string[] {
  const schema = resolve(document, named);
  if (schema.oneOf) {
    const branches = schema.oneOf
      .map((branch) => resolve(document, branch))
      .filter((branch) => typeAllows(branch, value))
      .map((branch) => keyMismatches(document, branch, value, path));
    if (branches.length === 0) return [`${path}: a ${jsonType(value)}, which no branch of its oneOf allows`];
    return branches.reduce((closest, branch) => (branch.length < closest.length ? branch : closest));
  }
  if (Array.isArray(value)) return schema.items ? value.flatMap((item, index) => keyMismatches(document, schema.items!, item, `${path}[${index}]`)) : [];
  if (value === null || typeof value !== 'object' || !schema.properties) return [];
  const properties = schema.properties;
  const record = value as Record<string, unknown>;
  return [
    ...Object.keys(record)
      .filter((key) => !(key in properties))
      .map((key) => `${path}.${key}: sent, not in the document`),
    ...(schema.required ?? []).filter((key) => !(key in record)).map((key) => `${path}.${key}: required by the document, not sent`),
    ...Object.entries(record).flatMap(([key, item]) => (key in properties ? keyMismatches(document, properties[key], item, `${path}.${key}`) : [])),
  ];
}
