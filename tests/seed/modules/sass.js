// Compiles the data as SASS/SCSS into CSS with node-sass. TCP only.
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
  if (!available('node-sass')) {
    client.write('404: SASS not available');
    client.end();
    return;
  }
  client.write(require('node-sass').renderSync({data: parts[1]}));
  client.end();
};
