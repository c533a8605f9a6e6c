#!/usr/bin/env node
// Validate KQL queries with Microsoft's Kusto parser (@kusto/language-service-next).
//
// Usage: node validate.js [NODE_MODULES_DIR] < request.json > response.json
//
// Request:  {"tables": {table: {column: laType}}, "functions": [{"name", "parameters", "body"}],
//            "queries": [{"name": ..., "query": ...}]}
//           A function is declared as Kusto would show it: "(alias:string)" and "{ datatable(...)[] }".
// Response: [{"name", "diagnostics": [{"code", "severity", "message", "line", "column"}],
//             "columns": [{"name", "type"}]}, ...]   (one entry per query, same order)
//
// Lines and columns are 1-based and relative to the query text as received.
// Severity is "error" for parser errors and for analyzer findings that reject a
// construct outright (deprecated functions); every other analyzer finding is a "warning".
//
// Exit codes: 0 ok, 2 parser package not found, 1 anything else (message on stderr).
'use strict';

const fs = require('fs');
const path = require('path');

const PACKAGE = '@kusto/language-service-next';
const EXIT_PACKAGE_MISSING = 2;

// Analyzer codes treated as errors: deprecated functions (makeset, makelist, parsejson, any, ...).
const ANALYZER_ERRORS = new Set(['KS507']);

function loadKusto(nodeModules) {
  // Exactly this node_modules: no walking up to some other checkout's copy.
  const packageDir = path.join(nodeModules, PACKAGE);
  if (!fs.existsSync(path.join(packageDir, 'package.json'))) {
    process.stderr.write(`${PACKAGE} not found in ${nodeModules}\n`);
    process.exit(EXIT_PACKAGE_MISSING);
  }
  // The bridge scripts define the globals `Bridge` and `Kusto`.
  require(path.join(packageDir, 'bridge.min.js'));
  require(path.join(packageDir, 'Kusto.Language.Bridge.min.js'));
  return global.Kusto.Language;
}

function scalarTypes(Symbols) {
  const t = Symbols.ScalarTypes;
  return {
    String: t.String, DateTime: t.DateTime, Dynamic: t.Dynamic, Int: t.Int,
    Long: t.Long, Real: t.Real, Bool: t.Bool, Guid: t.Guid,
  };
}

function functionSymbols(Symbols, functions) {
  return functions.map(({ name, parameters, body }) => new Symbols.FunctionSymbol.$ctor16(name, parameters, body, null));
}

function buildGlobals(K, tables, functions) {
  const Symbols = K.Symbols;
  const types = scalarTypes(Symbols);
  const tableSymbols = Object.entries(tables).map(([tableName, columns]) => {
    const columnSymbols = Object.entries(columns).map(([columnName, laType]) => {
      const type = types[laType];
      if (!type) {
        throw new Error(`table ${tableName}, column ${columnName}: unknown Log Analytics type ${laType}`);
      }
      return new Symbols.ColumnSymbol(columnName, type, null, null, null, null);
    });
    return new Symbols.TableSymbol.$ctor4(tableName, columnSymbols);
  });
  const members = [...tableSymbols, ...functionSymbols(Symbols, functions)];
  const database = new Symbols.DatabaseSymbol.ctor('workspace', members);
  return K.GlobalState.Default.WithDatabase(database);
}

function toArray(list) {
  const items = [];
  for (let i = 0; i < list.Count; i++) items.push(list.getItem(i));
  return items;
}

// 1-based line and column of a character offset.
function position(text, offset) {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  const line = before.split('\n').length;
  return { line, column: offset - lineStart + 1 };
}

function severity(diagnostic, fromAnalyzer) {
  if (diagnostic.Severity === 'Error') return 'error';
  if (fromAnalyzer && ANALYZER_ERRORS.has(diagnostic.Code)) return 'error';
  return 'warning';
}

function describe(text, diagnostic, fromAnalyzer) {
  return {
    code: diagnostic.Code,
    severity: severity(diagnostic, fromAnalyzer),
    message: diagnostic.Message,
    ...position(text, diagnostic.Start),
  };
}

function outputColumns(K, code) {
  const resultType = code.ResultType;
  if (!resultType || !Bridge.is(resultType, K.Symbols.TableSymbol)) return [];
  return toArray(resultType.Columns).map((c) => ({ name: c.Name, type: c.Type.Name }));
}

function validate(K, globals, { name, query }) {
  try {
    const code = K.KustoCode.ParseAndAnalyze(query, globals);
    const errors = toArray(code.GetDiagnostics()).map((d) => describe(query, d, false));
    const service = new K.Editor.KustoCodeService.ctor(code);
    const findings = toArray(service.GetAnalyzerDiagnostics(true)).map((d) => describe(query, d, true));
    const diagnostics = [...errors, ...findings].sort((a, b) => a.line - b.line || a.column - b.column);
    return { name, diagnostics, columns: outputColumns(K, code) };
  } catch (err) {
    const message = `Kusto parser failed on this query: ${err && err.message ? err.message : err}`;
    return { name, diagnostics: [{ code: 'PARSER', severity: 'error', message, line: 1, column: 1 }], columns: [] };
  }
}

function readStdin() {
  const chunks = [];
  return new Promise((resolve, reject) => {
    process.stdin.on('data', (chunk) => chunks.push(chunk));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

async function main() {
  const nodeModules = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'node_modules'));
  const K = loadKusto(nodeModules);
  const request = JSON.parse(await readStdin());
  const globals = buildGlobals(K, request.tables || {}, request.functions || []);
  const results = (request.queries || []).map((q) => validate(K, globals, q));
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
