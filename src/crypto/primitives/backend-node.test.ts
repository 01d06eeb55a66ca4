import { aeadBackend } from "./aead-node.ts";
import { backend } from "./backend-node.ts";
import { runBackendSuite } from "./test-support/suite.ts";

runBackendSuite({ ...backend, ...aeadBackend });
