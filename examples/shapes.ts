// vm-system run examples/shapes.ts
// TypeScript: the types are stripped (by a pinned transpiler, inside a sandbox) before it runs;
// an error would name this file's own lines.
import { area, type Shape } from "./shapes_area.ts";

const shapes: Shape[] = [
  { kind: "circle", radius: 1 },
  { kind: "square", side: 2 },
];
for (const shape of shapes) console.log(shape.kind, area(shape).toFixed(2));
export const total: number = shapes.reduce((sum, s) => sum + area(s), 0);
