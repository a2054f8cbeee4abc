// The catalogue of diagnostic codes. A code, once published, keeps its meaning: tests and
// users' scripts match on it. Ranges:
//   GY1xxx  model DSL: lexing and parsing
//   GY2xxx  model semantics: names, constants, shapes, op arguments (DSL and IR text)
//   GY3xxx  passes: capacity and mapping (later issues)
//   GY4xxx  hardware descriptions
//   GY5xxx  ONNX frontend
//   GY6xxx  IR text form
//   GY7xxx  per-die programs: files the compiler writes and the simulators read
//   GY8xxx  simulators: bad simulation parameters
//   GY9xxx  command line and files

export const CODES = {
  GY1001: 'unexpected character',
  GY1002: 'syntax error',
  GY1003: 'unterminated string',

  GY2001: 'undefined name',
  GY2002: 'name defined twice',
  GY2003: 'unknown op',
  GY2004: 'wrong number of operands',
  GY2005: 'unknown attribute',
  GY2006: 'attribute has the wrong type',
  GY2007: 'missing required attribute',
  GY2008: 'shape mismatch',
  GY2009: 'bad repeat count',
  GY2010: 'constant is not a whole number where one is needed',
  GY2011: 'division by zero in a constant expression',
  GY2012: 'a value is used where a constant is needed, or the reverse',
  GY2013: 'dtype mismatch',
  GY2014: 'bad dimension',
  GY2015: 'wrong number of results',
  GY2016: 'model has no outputs',
  GY2017: 'unknown dtype',
  GY2018: 'override names no constant of the model',
  GY2019: 'bad attribute value',
  GY2020: 'a constant expression needs a number',

  GY3001: 'a layer cannot fit the weight buffers',
  GY3002: 'the activations of one sample cannot fit the activation buffers',
  GY3003: 'the strategy cannot map the model onto this grid',
  GY3004: 'the module cannot go through this pass again',
  GY3005: 'the die cannot run an op of the model',

  GY4001: 'hardware description: field has a bad value',
  GY4002: 'hardware description: unknown preset',
  GY4003: 'hardware description: malformed file',
  GY4004: 'hardware description: unknown field',
  GY4005: 'accelerator plugin: a cost function failed or returned a bad value',

  GY5001: 'ONNX: malformed model file',
  GY5002: 'ONNX: unsupported operator',
  GY5003: 'ONNX: unsupported opset, data type or attribute',
  GY5004: 'ONNX: external data cannot be read',
  GY5005: 'ONNX: a dimension stays unknown',
  GY5006: 'ONNX: an operator has bad inputs',
  GY5007: 'ONNX: a tensor is too large',
  GY5008: 'ONNX: the graph cannot be lowered to the IR',

  GY6001: 'IR text: syntax error',
  GY6002: 'IR text: verification failed',

  GY7001: 'malformed program',
  GY7002: 'cannot write the program folder',
  GY7003: 'programs the simulator cannot run together',
  GY7004: 'the programs do not compute the model (functional verification)',

  GY8001: 'collective simulation: bad parameter',

  GY9001: 'command-line usage',
  GY9002: 'cannot read file',
  GY9003: 'unsupported model file type',
} as const satisfies Record<string, string>;

export type DiagnosticCode = keyof typeof CODES;
