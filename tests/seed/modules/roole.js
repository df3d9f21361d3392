// Compiles the data as Roole into CSS. TCP only.
function available(name) {
  try {
    return require.resolve(name).length > 0;
  } catch (e) {
    return false;
  }
}

exports.UExecute = function(parts) {
  return false;
};

exports.TExecute = function(parts, client) {
  if (!available('roole-parser') || !available('roole-compiler')) {
    client.write('404: ROOLE not available');
    client.end();
    return;
  }
  var ast = require('roole-parser').parse(parts[1]);
  client.write(require('roole-compiler').compile(ast));
  client.end();
};
