// Compiles CoffeeScript to JavaScript with the `coffeescript` package.
// TCP only. Answers `404: CoffeeScript not available` when it is missing.
exports.TExecute = function (parts, client) {
  let coffee;
  try {
    coffee = require('coffeescript');
  } catch (e) {
    client.end('404: CoffeeScript not available');
    return;
  }
  try {
    client.end(coffee.compile(parts[1]));
  } catch (error) {
    client.end('500: CoffeeScript ' + error.message);
  }
};
