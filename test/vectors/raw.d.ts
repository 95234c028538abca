/**
 * Vite's `?raw` import: the file's text. The vector file is read this way and
 * parsed with JSON.parse because Vite's JSON import rejects lone surrogate
 * escapes such as "\ud800", which the vectors need.
 */
declare module "*.json?raw" {
  const text: string;
  export default text;
}
