// Compiles SCSS to CSS with the maintained pure-JS `sass` package (the seed
// used node-sass, which no longer builds). TCP only. Answers
// `404: SASS not available` when the package is missing.
exports.TExecute = function (parts, client) {
  let sass;
  try {
    sass = require('sass');
  } catch (e) {
    client.end('404: SASS not available');
    return;
  }
  try {
    client.end(sass.compileString(parts[1]).css);
  } catch (error) {
    client.end('500: SASS ' + error.message);
  }
};
