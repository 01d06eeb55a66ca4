// Empty stand-in for @matrix-org/matrix-sdk-crypto-nodejs (see package.json): exports nothing that
// works, so any use in an encrypted room fails loudly instead of silently.
module.exports = new Proxy(
  {},
  {
    get(_target, name) {
      if (name === "__esModule" || typeof name === "symbol") return undefined;
      return class StandIn {
        constructor() {
          throw new Error(
            `matrix-sdk-crypto-nodejs stand-in: ${String(name)} is not available (no native crypto)`,
          );
        }
      };
    },
  },
);
