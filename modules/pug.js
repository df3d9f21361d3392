// The `jade` module under its new name.
module.exports = require('./jade.js');
