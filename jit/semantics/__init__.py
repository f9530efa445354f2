"""What operations mean on Vars: operators, iteration, subscripts, attributes, calls, builtins and context
managers. Opcode handlers (jit/opcodes) decode the stack; these modules decide the result."""
