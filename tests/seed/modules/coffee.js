// Compiles the data as CoffeeScript. TCP only.
var coffee = require('coffee-script');

exports.UExecute = function(parts) {
  return false;
};

exports.TExecute = function(parts, client) {
  client.write(coffee.compile(parts[1]));
};
