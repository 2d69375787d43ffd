// autocannon ships no types; the benchmark uses a handful of result fields.
declare module 'autocannon' {
  const autocannon: (options: Record<string, unknown>) => Promise<any>;
  export default autocannon;
}
