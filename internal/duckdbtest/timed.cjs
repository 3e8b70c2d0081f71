// Times SQL statements with DuckDB for the benchmarks (see duckdbtest.go): reads a JSON array of
// statements on standard input, runs them in order in one fresh in-memory DuckDB, and prints a
// JSON array of each statement's wall time in milliseconds, measured here so that starting
// Node.js and DuckDB is not counted.
'use strict';
const path = require('node:path');
const { DuckDBInstance } = require(path.join(process.env.AUDITEXPORT_TEST_DUCKDB, 'node_modules', '@duckdb', 'node-api'));

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const statements = JSON.parse(input);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const times = [];
  for (const sql of statements) {
    const start = process.hrtime.bigint();
    await conn.run(sql);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  process.stdout.write(JSON.stringify(times));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
