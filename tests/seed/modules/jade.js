// Renders the data as a Jade template. TCP only.
exports.UExecute = function(parts) {
  return false;
};

exports.TExecute = function(parts, client) {
  var jade = require('jade');
  client.write(jade.render(parts[1], {}));
  client.end();
};
