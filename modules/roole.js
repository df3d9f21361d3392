// Roole (roole-parser, roole-compiler) is dead upstream and no longer
// installs: this module answers as the seed's modules did for a missing
// compiler.
exports.TExecute = function (parts, client) {
  client.end('404: Roole not available');
};
