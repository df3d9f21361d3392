// Renders Jade templates to HTML with `pug`, Jade's successor (the same
// module also answers as `pug`). TCP only. Answers `404: Jade not available`
// when the package is missing.
const label = __filename.endsWith('pug.js') ? 'Pug' : 'Jade';
exports.TExecute = function (parts, client) {
  let pug;
  try {
    pug = require('pug');
  } catch (e) {
    client.end(`404: ${label} not available`);
    return;
  }
  try {
    client.end(pug.render(parts[1]));
  } catch (error) {
    client.end(`500: ${label} ` + error.message);
  }
};
