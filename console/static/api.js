// The console's only way to the server: POST /api/audit/graphql with the bearer token the user
// signed in with. The token lives in this tab's sessionStorage (gone when the tab closes) and is
// never put in a URL, a cookie or localStorage.

const ENDPOINT = '/api/audit/graphql';
const TOKEN_KEY = 'auditexport.token';

export const session = {
  token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

// ApiError carries what the server said: extensions.code, and for BAD_USER_INPUT the message
// of each invalid field (extensions.fields).
export class ApiError extends Error {
  constructor(message, { status = 0, code = '', fields = {}, errors = [] } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.errors = errors;
  }
}

// gql runs one operation and returns its data, or throws an ApiError. A 401 (the token was
// revoked, or the server forgot it) also signs the tab out.
export async function gql(query, variables = {}) {
  const token = session.token();
  if (!token) throw new ApiError('Sign in first.', { status: 401, code: 'UNAUTHENTICATED' });
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError('The server could not be reached: ' + e.message);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered ${response.status} without a GraphQL response.`, { status: response.status });
  }
  if (body.errors && body.errors.length) {
    const ext = body.errors[0].extensions || {};
    const fields = Object.assign({}, ...body.errors.map((e) => (e.extensions && e.extensions.fields) || {}));
    const err = new ApiError(body.errors.map((e) => e.message).join('\n'),
      { status: response.status, code: ext.code || '', fields, errors: body.errors });
    if (response.status === 401) window.dispatchEvent(new CustomEvent('auditexport:unauthenticated', { detail: err.message }));
    throw err;
  }
  return body.data;
}

// Destination kinds are read from the schema, so a kind added to the API appears here without
// a change: each member of the EndpointConfiguration union is matched with its create and update
// mutations by name (createS3AccessKeyExportConfiguration <-> S3AccessKeyEndpointConfiguration),
// and the forms are made from their input types.

const TYPE_REF = 'fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }';

const DISCOVER = `query Discover {
  endpoints: __type(name: "EndpointConfiguration") { possibleTypes { name fields { name type { ...T } } } }
  mutations: __type(name: "Mutation") { fields { name args { name type { ...T } } } }
  schema: __schema { types { kind name enumValues { name description } } }
} ${TYPE_REF}`;

// unwrap follows NON_NULL and LIST to the named type.
export function unwrap(type) {
  let t = type;
  let required = t.kind === 'NON_NULL';
  while (t.ofType) t = t.ofType;
  return { kind: t.kind, name: t.name, required };
}

function kindKey(name) {
  return name.replace(/^(create|update)/, '').replace(/(Export|Endpoint)Configuration(Input)?$/, '').toLowerCase();
}

let schemaPromise = null;

// schema returns { kinds, enums } for this server, fetched once per page load.
export function schema() {
  if (!schemaPromise) {
    schemaPromise = discover().catch((e) => { schemaPromise = null; throw e; });
  }
  return schemaPromise;
}

async function discover() {
  const data = await gql(DISCOVER);
  const enums = {};
  for (const t of data.schema.types) {
    if (t.kind === 'ENUM' && !t.name.startsWith('__')) enums[t.name] = t.enumValues;
  }
  const mutation = (prefix, key) => data.mutations.fields.find((f) =>
    f.name.startsWith(prefix) && kindKey(f.name) === key && f.args.length === 1);
  const kinds = data.endpoints.possibleTypes.map((t) => {
    const key = kindKey(t.name);
    const outputs = t.fields.filter((f) => ['SCALAR', 'ENUM'].includes(unwrap(f.type).kind)).map((f) => f.name);
    return { key, typename: t.name, outputs, create: mutation('create', key), update: mutation('update', key) };
  });
  const inputNames = kinds.flatMap((k) => [k.create, k.update]).filter(Boolean).map((m) => unwrap(m.args[0].type).name);
  const inputs = {};
  if (inputNames.length) {
    const query = 'query Inputs { ' + inputNames.map((n, i) =>
      `i${i}: __type(name: ${JSON.stringify(n)}) { name inputFields { name description type { ...T } } }`).join(' ') + ' } ' + TYPE_REF;
    const got = await gql(query);
    for (const t of Object.values(got)) inputs[t.name] = t.inputFields;
  }
  const operation = (m) => m && {
    name: m.name,
    arg: m.args[0].name,
    inputType: unwrap(m.args[0].type).name,
    fields: (inputs[unwrap(m.args[0].type).name] || []).map((f) => {
      const t = unwrap(f.type);
      return { name: f.name, description: f.description || '', required: t.required, kind: t.kind, type: t.name, options: enums[t.name] };
    }).filter((f) => f.kind === 'SCALAR' || f.kind === 'ENUM'),
  };
  for (const k of kinds) {
    k.create = operation(k.create);
    k.update = operation(k.update);
  }
  return { kinds, enums };
}

// endpointSelection asks for every scalar field of every kind, policies only when asked for.
export function endpointSelection(kinds, withPolicies = false) {
  return 'endpointConfiguration { __typename ' + kinds.map((k) =>
    `... on ${k.typename} { ${k.outputs.filter((f) => withPolicies || !f.endsWith('Policy')).join(' ')} }`).join(' ') + ' }';
}

export function kindOf(kinds, typename) {
  return kinds.find((k) => k.typename === typename);
}

// viewer is who the token is; can(viewer, p) whether it holds p (ADMIN implies every other).
export async function viewer() {
  return (await gql('query Viewer { viewer { name permissions } }')).viewer;
}

export function can(v, permission) {
  return !!v && (v.permissions.includes('ADMIN') || v.permissions.includes(permission));
}
