// A module without exports, to see how the service handles one.
var unused = 'fail';
