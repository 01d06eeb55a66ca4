import { backend } from "./backend-noble.ts";
import { runBackendSuite } from "./test-support/suite.ts";

runBackendSuite(backend);
