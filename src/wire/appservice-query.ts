// Device masquerading query parameters, apart from the rest of the appservice formats so that the
// client (which sends them) does not pull the registration file's YAML parser into browser bundles.

/** Device masquerading query parameters: the stable name (MSC4326) and MSC3202's. */
export const QUERY_DEVICE_ID = "device_id";
export const QUERY_DEVICE_ID_UNSTABLE = "org.matrix.msc3202.device_id";
