// How the console names destination kinds and fields. Kinds and fields themselves come from the
// schema (api.js): a kind or field missing here still works, with a name made from the schema's.
// Adding a kind: one entry in KINDS (and labels for its new fields in FIELDS).

import { humanize } from './dom.js';

// KINDS is keyed by the kind's key: its union member's name without EndpointConfiguration, lower case.
export const KINDS = {
  s3accesskey: {
    label: 'Amazon S3 with an access key',
    summary: (ep) => s3url(ep),
  },
  s3assumedrole: {
    label: 'Amazon S3 through an assumed IAM role',
    summary: (ep) => s3url(ep),
    createNote: 'Once created, the configuration\'s page shows its external ID and the trust and permission policies to give the role. Checks fail until the role trusts the external ID, then succeed on their own.',
  },
  adlssastoken: {
    label: 'Azure Data Lake Storage Gen2 with a SAS token',
    summary: (ep) => [`abfss://${ep.fileSystem}@${ep.storageAccount}/${ep.path || ''}`, ep.endpoint],
  },
};

function s3url(ep) {
  return [`s3://${ep.bucket}/${ep.path || ''}`, ep.endpoint || ep.region];
}

export function kindLabel(kind) {
  return (KINDS[kind.key] && KINDS[kind.key].label) || humanize(kind.typename.replace(/EndpointConfiguration$/, ''));
}

// destinationSummary says where a configuration writes: [location, through what (endpoint or region)].
export function destinationSummary(kind, ep) {
  const hint = kind && KINDS[kind.key];
  if (hint) return hint.summary(ep);
  const values = Object.entries(ep).filter(([k, v]) => k !== '__typename' && v !== null && typeof v !== 'object').map(([, v]) => v);
  return [values.slice(0, 3).join(' · '), ''];
}

// FIELDS labels inputs and outputs; secret marks a write-only value (also recognised by a
// description saying "Write-only").
export const FIELDS = {
  name: { label: 'Name', placeholder: 'acme-production' },
  interval: { label: 'Export interval' },
  bucket: { label: 'Bucket', placeholder: 'acme-audit-logs' },
  path: { label: 'Path (key prefix)', placeholder: 'auditexport/acme' },
  region: { label: 'Region', placeholder: 'us-east-1' },
  accessKeyId: { label: 'Access key ID', placeholder: 'AKIAIOSFODNN7EXAMPLE' },
  secretAccessKey: { label: 'Secret access key', secret: true },
  roleArn: { label: 'Role ARN', placeholder: 'arn:aws:iam::123456789012:role/auditexport' },
  externalId: { label: 'External ID' },
  endpoint: { label: 'Endpoint (S3-compatible servers only)', placeholder: 'https://minio.example.com:9000' },
  serverSideEncryption: { label: 'Server-side encryption' },
  sseKmsKeyId: { label: 'KMS key (with AWS_KMS)', placeholder: 'alias/audit-exports' },
  startTime: { label: 'Also export buffered events received since' },
  storageAccount: { label: 'Storage account' },
  fileSystem: { label: 'File system (container)' },
  sasToken: { label: 'SAS token', secret: true },
  trustPolicy: { label: 'Trust policy of the role' },
  permissionPolicy: { label: 'Permission policy' },
};

export function fieldLabel(name) {
  return (FIELDS[name] && FIELDS[name].label) || humanize(name);
}

export function isSecret(field) {
  return !!(FIELDS[field.name] && FIELDS[field.name].secret) || /write-only/i.test(field.description || '');
}
