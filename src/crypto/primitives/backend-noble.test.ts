import { aeadBackend } from "./aead-noble.ts";
import { backend } from "./backend-noble.ts";
import { runBackendSuite } from "./test-support/suite.ts";

runBackendSuite({ ...backend, ...aeadBackend });
