/**
 * `keyroom/crypto`'s `primitives`: index.ts and ChaCha20-Poly1305 (aead.ts), which index.ts leaves
 * out so that the engine's browser chunks do not carry it.
 */
export * from "./aead.ts";
export * from "./index.ts";
