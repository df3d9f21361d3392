// Compiles LESS to CSS with the `less` package, as the seed's less.js did.
// TCP only. Answers `404: LESS not available` when the package is missing.
exports.TExecute = function (parts, client) {
  let less;
  try {
    less = require('less');
  } catch (e) {
    client.end('404: LESS not available');
    return;
  }
  less.render(parts[1]).then(
    (output) => client.end(output.css),
    (error) => client.end('500: LESS ' + error.message),
  );
};
