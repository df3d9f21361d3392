// Compiles the data as LESS into CSS. TCP only.
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
  if (!available('less')) {
    client.write('404: LESS not available');
    return;
  }
  require('less').render(parts[1], function(error, css) {
    client.write(error ? '500: LESS ' + error.message : css);
  });
};
