// The error a graph file gets when it is neither a readable workflow nor an API graph.
export class GraphFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphFormatError';
  }
}
