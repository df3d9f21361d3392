// Transpiles TypeScript to JavaScript in memory with the `typescript`
// package's API (the seed ran the command-line compiler on temporary
// files). TCP only. Answers `404: TypeScript not available` when missing.
exports.TExecute = function (parts, client) {
  let ts;
  try {
    ts = require('typescript');
  } catch (e) {
    client.end('404: TypeScript not available');
    return;
  }
  const result = ts.transpileModule(parts[1], {
    compilerOptions: { target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.CommonJS },
    reportDiagnostics: true,
  });
  const errors = (result.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    client.end('500: TypeScript ' + ts.flattenDiagnosticMessageText(errors[0].messageText, '\n'));
    return;
  }
  client.end(result.outputText);
};
