// A DNS label without dots: the name is embedded in Envoy stat names, where dots separate name parts.
export const ROLLOUT_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
export const PATH_PREFIX_PATTERN = "^/\\S*$";
// RFC 9110 token characters, lowercase only: HTTP/2 and Envoy's header maps are lowercase.
export const HEADER_NAME_PATTERN = "^[a-z0-9!#$%&'*+.^_`|~-]+$";
