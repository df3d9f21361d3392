// Compiles the data as TypeScript with the command line compiler, through
// files in ./modules/tmp/ (the service runs in its own folder). TCP only.
var fs = require('fs');
var exec = require('child_process').exec;
var counter = 0;

exports.UExecute = function(parts) {
  return false;
};

exports.TExecute = function(parts, client) {
  var base = './modules/tmp/ts' + process.pid + '_' + (++counter);
  fs.writeFile(base + '.ts', parts[1], function(error) {
    if (error) {
      client.write('500: TypeScript ' + error.message);
      return;
    }
    exec('node ./node_modules/typescript/bin/tsc --skipLibCheck ' + base + '.ts', function(error, stdout) {
      fs.readFile(base + '.js', 'utf-8', function(missing, js) {
        fs.unlink(base + '.ts', function() {});
        if (missing) {
          client.write('500: TypeScript ' + (stdout || missing.message));
          return;
        }
        fs.unlink(base + '.js', function() {});
        client.write(js);
      });
    });
  });
};
