import { backend } from "./backend-node.ts";
import { runBackendSuite } from "./test-support/suite.ts";

runBackendSuite(backend);
