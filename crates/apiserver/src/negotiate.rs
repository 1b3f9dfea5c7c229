//! Content negotiation of the discovery and OpenAPI documents: which of
//! the representations the server can produce an `Accept` header asks for,
//! and the content type each is sent with. Nothing here knows about HTTP
//! beyond the header's text.

use std::cmp::Ordering;

/// Content type of legacy discovery and of every other JSON document here.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of an `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
pub const CONTENT_TYPE_AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Content type of an `apidiscovery.k8s.io/v2beta1` `APIGroupDiscoveryList`.
pub const CONTENT_TYPE_AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
/// Content type the Kubernetes OpenAPI handler answers protobuf requests with
/// (`k8s.io/kube-openapi/pkg/handler/handler.go`); the `@v1.0` spelling that
/// client-go sends is accepted as a request type only.
pub const CONTENT_TYPE_OPENAPI_V2_PROTOBUF: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

pub(crate) const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
pub(crate) const DISCOVERY_LIST_KIND: &str = "APIGroupDiscoveryList";
const OPENAPI_V2_PROTOBUF_SUBTYPES: [&str; 2] = [
    "com.github.proto-openapi.spec.v2.v1.0+protobuf",
    "com.github.proto-openapi.spec.v2@v1.0+protobuf",
];

/// Which representation a discovery request accepts, parsed from the Accept header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryFormat {
    /// `APIVersions` / `APIGroupList` as plain `application/json`.
    Legacy,
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    AggregatedV2,
    /// `apidiscovery.k8s.io/v2beta1` `APIGroupDiscoveryList` (kubectl 1.27–1.29).
    AggregatedV2Beta1,
}

/// One media range of an Accept header.
struct MediaRange {
    main: String,
    sub: String,
    params: Vec<(String, String)>,
    quality: f32,
}

impl MediaRange {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `*/*` or `application/*`, which any JSON document satisfies.
    fn is_json_wildcard(&self) -> bool {
        (self.main == "*" || self.main == "application") && self.sub == "*"
    }

    fn specificity(&self) -> u8 {
        match (self.main.as_str(), self.sub.as_str()) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2,
        }
    }
}

/// Splits an Accept header into media ranges, best first: by descending
/// `q`, then more specific ranges before wildcards, otherwise in the order
/// sent (the ordering `github.com/munnerz/goautoneg` gives the Kubernetes
/// negotiators). Ranges with `q=0` are dropped.
fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut ranges = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim();
        if media.is_empty() {
            continue;
        }
        let (main, sub) = media.split_once('/').unwrap_or((media, "*"));
        let mut range = MediaRange {
            main: main.trim().to_ascii_lowercase(),
            sub: sub.trim().to_ascii_lowercase(),
            params: Vec::new(),
            quality: 1.0,
        };
        for piece in pieces {
            let Some((key, value)) = piece.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"').to_string();
            if key == "q" {
                range.quality = value.parse().unwrap_or(0.0);
            } else {
                range.params.push((key, value));
            }
        }
        if range.quality > 0.0 {
            ranges.push(range);
        }
    }
    ranges.sort_by(|a, b| {
        b.quality
            .partial_cmp(&a.quality)
            .unwrap_or(Ordering::Equal)
            .then(b.specificity().cmp(&a.specificity()))
    });
    ranges
}

/// The discovery format to answer `/api` or `/apis` with, or `None` when the
/// header names only representations this server cannot produce (the
/// Kubernetes server answers 406 then). A missing or empty header means
/// legacy JSON. Aggregated ranges must carry `g=apidiscovery.k8s.io` and
/// `as=APIGroupDiscoveryList`; extra parameters such as `profile=nopeer`
/// (sent by newer client-go) or `charset` are ignored. Protobuf ranges are
/// skipped, as are JSON ranges asking for another kind (`as=Table`).
pub fn negotiate_strict(accept: Option<&str>) -> Option<DiscoveryFormat> {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Some(DiscoveryFormat::Legacy);
    };
    for range in parse_accept(header) {
        let json = range.main == "application" && range.sub == "json";
        if !json && !range.is_json_wildcard() {
            continue;
        }
        match (range.param("g"), range.param("v"), range.param("as")) {
            (None, None, None) => return Some(DiscoveryFormat::Legacy),
            (Some(DISCOVERY_GROUP), Some(version), Some(DISCOVERY_LIST_KIND)) if json => {
                match version {
                    "v2" => return Some(DiscoveryFormat::AggregatedV2),
                    "v2beta1" => return Some(DiscoveryFormat::AggregatedV2Beta1),
                    _ => continue,
                }
            }
            _ => continue,
        }
    }
    None
}

/// Like [`negotiate_strict`], but falls back to legacy JSON when nothing in
/// the header is acceptable.
pub fn negotiate(accept: Option<&str>) -> DiscoveryFormat {
    negotiate_strict(accept).unwrap_or(DiscoveryFormat::Legacy)
}

/// Content-Type to answer with for that format. client-go tells the formats
/// apart by exactly these parameters (`ContentTypeIsGVK` in
/// `k8s.io/client-go/discovery/discovery_client.go`); an aggregated body sent
/// as plain `application/json` would be misread as an `APIGroupList`.
pub fn content_type(format: &DiscoveryFormat) -> &'static str {
    match format {
        DiscoveryFormat::Legacy => CONTENT_TYPE_JSON,
        DiscoveryFormat::AggregatedV2 => CONTENT_TYPE_AGGREGATED_V2,
        DiscoveryFormat::AggregatedV2Beta1 => CONTENT_TYPE_AGGREGATED_V2BETA1,
    }
}

/// Whether a plain JSON answer satisfies the Accept header (`application/json`,
/// `application/*`, `*/*`, or no header). Used for the OpenAPI v3 endpoints,
/// which are served as JSON only: the Kubernetes handler
/// (`k8s.io/kube-openapi/pkg/handler3/handler.go`) matches on type and subtype
/// and answers 406 when nothing matches.
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return true;
    };
    parse_accept(header)
        .iter()
        .any(|r| r.is_json_wildcard() || (r.main == "application" && r.sub == "json"))
}

/// Representation of `/openapi/v2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenApiV2Format {
    Json,
    /// gnostic `openapi.v2.Document` protobuf; what client-go requests.
    Protobuf,
}

/// Chooses the `/openapi/v2` representation the way
/// `k8s.io/kube-openapi/pkg/handler/handler.go` does: the best media range
/// that names JSON or one of the two protobuf spellings wins, wildcards mean
/// JSON, no header means `*/*`. `None` means 406 Not Acceptable.
pub fn negotiate_openapi_v2(accept: Option<&str>) -> Option<OpenApiV2Format> {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Some(OpenApiV2Format::Json);
    };
    for range in parse_accept(header) {
        if range.is_json_wildcard() || (range.main == "application" && range.sub == "json") {
            return Some(OpenApiV2Format::Json);
        }
        if range.main == "application" && OPENAPI_V2_PROTOBUF_SUBTYPES.contains(&range.sub.as_str())
        {
            return Some(OpenApiV2Format::Protobuf);
        }
    }
    None
}

/// Content-Type for an `/openapi/v2` answer.
pub fn openapi_v2_content_type(format: &OpenApiV2Format) -> &'static str {
    match format {
        OpenApiV2Format::Json => CONTENT_TYPE_JSON,
        OpenApiV2Format::Protobuf => CONTENT_TYPE_OPENAPI_V2_PROTOBUF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accept headers real clients send to `/api` and `/apis`.
    const CLIENT_GO_1_27: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const CLIENT_GO_1_30: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const CLIENT_GO_NOPEER: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer,application/json";
    const LEGACY_CLIENT: &str = "application/json, */*";
    const OPENAPI_V2_CLIENT_GO: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

    /// Parses a Content-Type the way client-go's `ContentTypeIsGVK` does.
    fn gvk_params(content_type: &str) -> (String, Vec<(String, String)>) {
        let mut parts = content_type.split(';');
        let base = parts.next().unwrap().trim().to_string();
        let params = parts
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        (base, params)
    }

    #[test]
    fn negotiates_what_clients_send() {
        assert_eq!(
            negotiate(Some(CLIENT_GO_1_27)),
            DiscoveryFormat::AggregatedV2Beta1
        );
        assert_eq!(
            negotiate(Some(CLIENT_GO_1_30)),
            DiscoveryFormat::AggregatedV2
        );
        assert_eq!(
            negotiate(Some(CLIENT_GO_NOPEER)),
            DiscoveryFormat::AggregatedV2
        );
        assert_eq!(negotiate(Some(LEGACY_CLIENT)), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(Some("application/json")), DiscoveryFormat::Legacy);
        assert_eq!(
            negotiate(Some("application/json; charset=utf-8")),
            DiscoveryFormat::Legacy
        );
        assert_eq!(negotiate(Some("*/*")), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(None), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(Some("  ")), DiscoveryFormat::Legacy);
    }

    #[test]
    fn negotiation_skips_unproducible_ranges() {
        // Protobuf aggregated discovery is skipped in favour of the JSON form.
        let header = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::AggregatedV2);
        // Unknown aggregated versions and other kinds are not discovery.
        let header =
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::Legacy);
        assert_eq!(
            negotiate_strict(Some("application/json;as=Table;g=meta.k8s.io;v=v1")),
            None
        );
        assert_eq!(
            negotiate_strict(Some("application/vnd.kubernetes.protobuf")),
            None
        );
        assert_eq!(negotiate_strict(Some("text/html")), None);
        assert_eq!(negotiate(Some("text/html")), DiscoveryFormat::Legacy);
        // Quality values order the ranges; q=0 excludes one.
        let header = "application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::AggregatedV2Beta1);
        let header = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::Legacy);
    }

    #[test]
    fn content_types_carry_the_gvk_client_go_checks() {
        assert_eq!(content_type(&DiscoveryFormat::Legacy), "application/json");
        for (format, version) in [
            (DiscoveryFormat::AggregatedV2, "v2"),
            (DiscoveryFormat::AggregatedV2Beta1, "v2beta1"),
        ] {
            let (base, params) = gvk_params(content_type(&format));
            assert_eq!(base, "application/json");
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("g"), Some("apidiscovery.k8s.io"));
            assert_eq!(get("v"), Some(version));
            assert_eq!(get("as"), Some("APIGroupDiscoveryList"));
            // The answer's own content type negotiates to the same format.
            assert_eq!(negotiate(Some(content_type(&format))), format);
        }
    }

    #[test]
    fn negotiates_openapi_v2() {
        assert_eq!(
            negotiate_openapi_v2(Some(OPENAPI_V2_CLIENT_GO)),
            Some(OpenApiV2Format::Protobuf)
        );
        assert_eq!(
            negotiate_openapi_v2(Some(CONTENT_TYPE_OPENAPI_V2_PROTOBUF)),
            Some(OpenApiV2Format::Protobuf)
        );
        assert_eq!(
            negotiate_openapi_v2(Some("application/json")),
            Some(OpenApiV2Format::Json)
        );
        assert_eq!(
            negotiate_openapi_v2(Some(LEGACY_CLIENT)),
            Some(OpenApiV2Format::Json)
        );
        assert_eq!(negotiate_openapi_v2(None), Some(OpenApiV2Format::Json));
        assert_eq!(negotiate_openapi_v2(Some("application/yaml")), None);
        assert_eq!(
            openapi_v2_content_type(&OpenApiV2Format::Protobuf),
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        );
        assert_eq!(
            openapi_v2_content_type(&OpenApiV2Format::Json),
            "application/json"
        );
    }

    #[test]
    fn json_acceptance() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json")));
        assert!(accepts_json(Some(LEGACY_CLIENT)));
        assert!(accepts_json(Some("application/*")));
        assert!(!accepts_json(Some(
            "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
        )));
        assert!(!accepts_json(Some("application/json;q=0")));
    }
}
