// The documents a schema is compiled from and the identifiers found in them: every `$id` (a schema
// resource and its base URI), `$anchor` and `$dynamicAnchor`, found by walking only the places where
// subschemas live. It turns a `$ref` into a location in a document; what is not in the documents (a
// remote URI) is a SchemaError, except the 2020-12 meta-schemas, which are embedded.
import PrismJSON

/// A place in one of the registry's documents: the document and the JSON Pointer tokens to it.
struct SchemaLocation: Hashable {
    let document: Int
    let tokens: [String]

    func appending(_ more: String...) -> SchemaLocation {
        SchemaLocation(document: document, tokens: tokens + more)
    }
}

struct SchemaRegistry {
    /// The base URI of a document without `$id`. Relative references resolve against it as against
    /// any hierarchical URI; the scheme is Prism's own, so nothing outside the document can match it.
    static let defaultBase = "prism-schema:/root.json"

    /// Keywords whose value is one subschema, an object of subschemas, or an array of subschemas.
    static let schemaKeywords: Set<String> = [
        "additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema",
    ]
    static let schemaMapKeywords: Set<String> = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"]
    static let schemaArrayKeywords: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]

    /// `$schema` values taken to mean draft 2020-12. Older json-schema.org dialects are accepted too:
    /// schema generators still write them, their common keywords mean the same, and the meta-schema
    /// check refuses the forms that changed (an array `items`).
    static let knownDialects: Set<String> = [
        "https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema", "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-04/schema", "http://json-schema.org/schema",
    ]

    private(set) var documents: [JSONValue] = []
    /// How a document's locations are written in paths: "" for the user's, "<$id>#" for a meta-schema.
    private(set) var pathPrefixes: [String] = []
    private var resourceRoots: [String: SchemaLocation] = [:]
    private var anchors: [String: SchemaLocation] = [:]
    /// Per resource URI, its dynamic anchors by name.
    private(set) var dynamicAnchors: [String: [String: SchemaLocation]] = [:]
    private var dynamicAnchorAt: [SchemaLocation: String] = [:]
    private var baseAt: [SchemaLocation: URIReference] = [:]
    private var metaSchemasLoaded = false

    /// Adds a document and records its identifiers; throws for a `$schema` of another dialect or a
    /// document nested deeper than SchemaLimits.maxSchemaDepth.
    mutating func add(_ document: JSONValue, base: String, pathPrefix: String) throws {
        documents.append(document)
        pathPrefixes.append(pathPrefix)
        let root = SchemaLocation(document: documents.count - 1, tokens: [])
        let baseURI = URIReference(base)
        resourceRoots[baseURI.text] = root
        try scan(document, at: root, base: baseURI, depth: 0)
    }

    /// Adds the embedded 2020-12 meta-schemas (once).
    mutating func addMetaSchemas() throws {
        guard !metaSchemasLoaded else { return }
        metaSchemasLoaded = true
        for (id, text) in MetaSchema2020.documents {
            // The embedded text is fixed and tested: a parse failure is a build defect.
            try add(try JSONValue.parse(text), base: id, pathPrefix: id + "#")
        }
    }

    func value(at location: SchemaLocation) -> JSONValue? {
        var value = documents[location.document]
        for token in location.tokens {
            switch value {
            case .object: guard let member = value[token] else { return nil }; value = member
            case .array(let elements):
                // RFC 6901: an index is digits without a leading zero.
                guard let index = Int(token), String(index) == token, elements.indices.contains(index) else { return nil }
                value = elements[index]
            default: return nil
            }
        }
        return value
    }

    /// How `location` is written in reported paths.
    func path(of location: SchemaLocation) -> String {
        pathPrefixes[location.document] + JSONPointer.pointer(location.tokens)
    }

    /// The base URI in effect at `location`: its own or its nearest walked ancestor's `$id`.
    func base(at location: SchemaLocation) -> URIReference {
        var tokens = location.tokens
        while true {
            if let base = baseAt[SchemaLocation(document: location.document, tokens: tokens)] { return base }
            if tokens.isEmpty { return URIReference(Self.defaultBase) }
            tokens.removeLast()
        }
    }

    /// The name of the `$dynamicAnchor` declared at `location`, if any.
    func dynamicAnchor(at location: SchemaLocation) -> String? { dynamicAnchorAt[location] }

    /// The location a `$ref`/`$dynamicRef` value names, resolved against `base`; `anchor` is the
    /// fragment when it is a plain name rather than a pointer. Throws, naming `schemaPath`, when the
    /// reference leads outside the documents or to nothing.
    mutating func resolve(_ reference: String, against base: URIReference, schemaPath: String) throws -> (location: SchemaLocation, anchor: String?) {
        let target = URIReference(reference).resolved(against: base)
        let resource = target.withoutFragment.text
        if resourceRoots[resource] == nil, MetaSchema2020.documents.contains(where: { $0.id == resource }) {
            try addMetaSchemas()
        }
        guard let root = resourceRoots[resource] else {
            let remote = target.scheme != URIReference(Self.defaultBase).scheme
            throw SchemaError(schemaPath: schemaPath, message: remote
                ? "\"\(reference)\" refers to \(resource), which is not in this schema: remote references are not fetched"
                : "\"\(reference)\" does not resolve to any schema in this document (other documents are not fetched)")
        }
        let fragment = target.fragment ?? ""
        if fragment.isEmpty { return (root, nil) }
        if let tokens = JSONPointer.tokens(ofFragment: fragment) {
            let location = SchemaLocation(document: root.document, tokens: root.tokens + tokens)
            guard value(at: location) != nil else {
                throw SchemaError(schemaPath: schemaPath, message: "\"\(reference)\" points to nothing: no value at \(JSONPointer.pointer(tokens)) in \(Self.describe(resource))")
            }
            return (location, nil)
        }
        guard !fragment.hasPrefix("/"), let name = JSONPointer.percentDecoded(fragment) else {
            throw SchemaError(schemaPath: schemaPath, message: "\"\(reference)\" has a fragment that is neither a JSON Pointer (bad ~ or % escape) nor an anchor name")
        }
        guard let location = anchors[resource + "#" + name] else {
            throw SchemaError(schemaPath: schemaPath, message: "\"\(reference)\" names the anchor \"\(name)\", which \(Self.describe(resource)) does not declare")
        }
        return (location, name)
    }

    /// A resource for a message: its URI, or "this schema" for the document's own (which has no `$id`).
    private static func describe(_ resource: String) -> String {
        resource == defaultBase ? "this schema" : resource
    }

    /// Throws when `identifier` already names another place of the same document: which one would a
    /// reference mean? (Across documents the first to declare it keeps it.)
    private func checkUnique(_ table: [String: SchemaLocation], _ identifier: String, at location: SchemaLocation, keyword: String) throws {
        guard let existing = table[identifier], existing.document == location.document, existing != location else { return }
        throw SchemaError(schemaPath: path(of: location.appending(keyword)),
                          message: "\(keyword) declares \(identifier.hasPrefix(Self.defaultBase) ? String(identifier.dropFirst(Self.defaultBase.count)) : identifier), which \(path(of: existing).isEmpty ? "the root" : path(of: existing)) already declares")
    }

    /// Walks a subschema, recording its base URI, resource and anchors, then its subschemas.
    private mutating func scan(_ value: JSONValue, at location: SchemaLocation, base: URIReference, depth: Int) throws {
        guard depth <= SchemaLimits.maxSchemaDepth else {
            throw SchemaError(schemaPath: path(of: location), message: "subschemas nested deeper than \(SchemaLimits.maxSchemaDepth) levels")
        }
        guard case .object(let members) = value else {
            baseAt[location] = base
            return
        }
        var base = base
        if let id = value["$id"]?.string {
            base = URIReference(id).resolved(against: base).withoutFragment
            try checkUnique(resourceRoots, base.text, at: location, keyword: "$id")
            resourceRoots[base.text] = resourceRoots[base.text] ?? location
        }
        baseAt[location] = base
        if let dialect = value["$schema"]?.string {
            let withoutHash = dialect.hasSuffix("#") ? String(dialect.dropLast()) : dialect
            guard Self.knownDialects.contains(withoutHash) else {
                throw SchemaError(schemaPath: path(of: location.appending("$schema")),
                                  message: "\"\(dialect)\" is not a JSON Schema dialect Prism knows (draft 2020-12 is supported; custom meta-schemas are not fetched)")
            }
        }
        if let anchor = value["$anchor"]?.string {
            try checkUnique(anchors, base.text + "#" + anchor, at: location, keyword: "$anchor")
            anchors[base.text + "#" + anchor] = anchors[base.text + "#" + anchor] ?? location
        }
        if let anchor = value["$dynamicAnchor"]?.string {
            try checkUnique(anchors, base.text + "#" + anchor, at: location, keyword: "$dynamicAnchor")
            anchors[base.text + "#" + anchor] = anchors[base.text + "#" + anchor] ?? location
            dynamicAnchors[base.text, default: [:]][anchor] = location
            dynamicAnchorAt[location] = anchor
        }
        for (key, member) in members {
            if Self.schemaKeywords.contains(key) {
                try scan(member, at: location.appending(key), base: base, depth: depth + 1)
            } else if Self.schemaMapKeywords.contains(key), case .object(let entries) = member {
                for (name, entry) in entries { try scan(entry, at: location.appending(key, name), base: base, depth: depth + 1) }
            } else if Self.schemaArrayKeywords.contains(key), case .array(let elements) = member {
                for (i, element) in elements.enumerated() { try scan(element, at: location.appending(key, String(i)), base: base, depth: depth + 1) }
            }
        }
    }
}
