// The dashboard's sources, imported as text: wrangler.toml's [[rules]] make them Text modules.
declare module "*.html" {
  const text: string;
  export default text;
}
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*/dashboard/app.js" {
  const text: string;
  export default text;
}
