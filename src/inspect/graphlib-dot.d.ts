// Types for @dagrejs/graphlib-dot (a CommonJS package without its own): the parts Gyges uses.
// `write` only calls graphlib's public Graph methods, so it accepts a @dagrejs/graphlib 4 graph;
// `read` builds a graph of the graphlib release the package bundles, with the same methods.

declare module '@dagrejs/graphlib-dot' {
  import type { Graph } from '@dagrejs/graphlib';

  type Attrs = Record<string, string>;
  const dot: {
    /** DOT text of `g`: `strict` unless it is a multigraph; compound parents become subgraphs. */
    write(g: Graph<object, object, object>): string;
    /** Parse one DOT graph; subgraphs become compound parents. Throws on a syntax error. */
    read(text: string): Graph<Attrs, Attrs, Attrs>;
    readMany(text: string): Graph<Attrs, Attrs, Attrs>[];
  };
  export default dot;
}
