// A machine on a store back end whose inbound session rows can be damaged while it is closed
// (src/store/test-support/damageable.ts), for tests of what the engine does with such rows.
import type { CryptoStore } from "../../store/index.ts";
import { type DamageableBackEnd, DEVICE, USER } from "../../store/test-support/damageable.ts";
import { OlmMachine } from "../machine.ts";

export interface DamageableMachine {
  readonly backEnd: DamageableBackEnd;
  machine(): OlmMachine;
  close(): Promise<void>;
  /** Closes, runs `fn` on the closed store (when given), and opens again. */
  restart(fn?: () => Promise<void>): Promise<void>;
}

/** Opens `backEnd`'s store (seen through `wrap`, when given) and a machine on it. */
export async function openDamageable(
  backEnd: DamageableBackEnd,
  wrap: (store: CryptoStore) => CryptoStore = (store) => store,
): Promise<DamageableMachine> {
  let store = await backEnd.open();
  let machine = await OlmMachine.open({ userId: USER, deviceId: DEVICE, store: wrap(store) });
  const close = async () => {
    await machine.close();
    await store.close();
  };
  return {
    backEnd,
    machine: () => machine,
    close,
    async restart(fn) {
      await close();
      await fn?.();
      store = await backEnd.open();
      machine = await OlmMachine.open({ userId: USER, deviceId: DEVICE, store: wrap(store) });
    },
  };
}
