// Turns the registry's documents into a SchemaProgram: one node per subschema reached from the root
// (or declared in `$defs`, or a dynamic anchor), each keyword into a Check with its subschemas and
// `$ref` targets as node indices. Every reference is resolved and every pattern compiled here, so
// validation never fails on the schema itself.
import PrismJSON

/// Lives for one compilation; a class so that the per-schema builders share its tables.
final class SchemaCompiler {
    fileprivate var registry: SchemaRegistry
    fileprivate var program = SchemaProgram()
    private var nodeAt: [SchemaLocation: Int] = [:]
    private var resourceIndex: [String: Int] = [:]
    /// `$ref` targets given a node index but not built yet: built after the referring schema, so that
    /// chains of references do not deepen the recursion.
    private var pending: [(SchemaLocation, Int)] = []

    init(registry: SchemaRegistry) {
        self.registry = registry
    }

    /// Compiles the schema at `root` and everything it reaches.
    static func compile(_ registry: SchemaRegistry, root: SchemaLocation) throws -> SchemaProgram {
        let compiler = SchemaCompiler(registry: registry)
        compiler.program.root = try compiler.node(at: root, depth: 0)
        try compiler.compilePending()
        try compiler.compileDynamicAnchors()
        return compiler.program
    }

    /// Builds the `$ref` targets reserved so far, and those their keywords reserve in turn.
    private func compilePending() throws {
        while let (location, index) = pending.popLast() {
            try build(index, at: location, depth: 0)
        }
    }

    /// Every resource's dynamic anchors, which a `$dynamicRef` may reach through the dynamic scope;
    /// compiling them can load more documents, hence the loop.
    private func compileDynamicAnchors() throws {
        var done = 0
        while true {
            let all = registry.dynamicAnchors.flatMap { uri, names in names.map { (uri, $0.key, $0.value) } }
            guard all.count > done else { return }
            done = all.count
            for (uri, name, location) in all {
                let node = try node(at: location, depth: 0)
                try compilePending()
                program.resources[resource(uri)].dynamicAnchors[name] = node
            }
        }
    }

    private func resource(_ uri: String) -> Int {
        if let index = resourceIndex[uri] { return index }
        program.resources.append(SchemaResource(uri: uri))
        resourceIndex[uri] = program.resources.count - 1
        return program.resources.count - 1
    }

    fileprivate func fail(_ location: SchemaLocation, _ message: String) -> SchemaError {
        SchemaError(schemaPath: registry.path(of: location), message: message)
    }

    /// The node of the subschema at `location` (a keyword's own subschema, `depth` levels down),
    /// compiled on first use. A node is registered before its keywords are compiled, so a `$ref`
    /// cycle ends at the node being built.
    fileprivate func node(at location: SchemaLocation, depth: Int) throws -> Int {
        if let index = nodeAt[location] { return index }
        guard depth <= SchemaLimits.maxSchemaDepth else {
            throw fail(location, "subschemas nested deeper than \(SchemaLimits.maxSchemaDepth) levels")
        }
        let index = try reserve(location)
        pending.removeLast()
        try build(index, at: location, depth: depth)
        return index
    }

    /// The node index of the subschema at `location`, built later by compilePending if it is new.
    fileprivate func reserve(_ location: SchemaLocation) throws -> Int {
        if let index = nodeAt[location] { return index }
        guard program.nodes.count < SchemaLimits.maxSchemaNodes else {
            throw fail(location, "the schema has more than \(SchemaLimits.maxSchemaNodes) subschemas")
        }
        let index = program.nodes.count
        nodeAt[location] = index
        program.nodes.append(SchemaNode(location: registry.path(of: location), resource: 0))
        pending.append((location, index))
        return index
    }

    private func build(_ index: Int, at location: SchemaLocation, depth: Int) throws {
        guard let value = registry.value(at: location) else { throw fail(location, "no schema here") }
        let base = registry.base(at: location)
        program.nodes[index].resource = resource(base.text)
        switch value {
        case .bool(let b):
            program.nodes[index].constant = b
            (program.nodes[index].refusedBy, program.nodes[index].refusal) = Self.refusal(at: location.tokens)
        case .object(let members):
            program.nodes[index].checks = try KeywordBuilder(compiler: self, location: location, base: base, depth: depth).checks(members)
        default:
            throw fail(location, "a schema must be an object or a boolean, is \(describeType(value))")
        }
    }

    /// For a `false` schema: the keyword whose subschema it is, and what it refuses there.
    private static func refusal(at tokens: [String]) -> (String, Refusal) {
        let n = tokens.count
        var keyword = n >= 1 ? tokens[n - 1] : "false"
        if n >= 2, SchemaRegistry.schemaMapKeywords.contains(tokens[n - 2]) || SchemaRegistry.schemaArrayKeywords.contains(tokens[n - 2]) {
            keyword = tokens[n - 2]
        }
        switch keyword {
        case "properties", "patternProperties", "additionalProperties", "unevaluatedProperties": return (keyword, .property)
        case "items", "prefixItems", "unevaluatedItems": return (keyword, .item)
        // A definition applies through the `$ref` that names it: the schema itself is what refuses.
        case "$defs", "definitions": return ("false", .value)
        default: return (n == 0 ? "false" : keyword, .value)
        }
    }

    /// Builds the checks of one object schema.
    private struct KeywordBuilder {
        let compiler: SchemaCompiler
        let location: SchemaLocation
        let base: URIReference
        let depth: Int

        init(compiler: SchemaCompiler, location: SchemaLocation, base: URIReference, depth: Int) {
            self.compiler = compiler
            self.location = location
            self.base = base
            self.depth = depth
        }

        private func fail(_ keyword: String, _ message: String) -> SchemaError {
            compiler.fail(location.appending(keyword), message)
        }

        private func sub(_ tokens: String...) throws -> Int {
            try compiler.node(at: SchemaLocation(document: location.document, tokens: location.tokens + tokens), depth: depth + 1)
        }

        private func nonNegativeInteger(_ keyword: String, _ value: JSONValue) throws -> Int {
            guard let d = value.double, d >= 0, d.rounded() == d else { throw fail(keyword, "\(keyword) must be a non-negative integer") }
            return d >= Double(Int.max) ? Int.max : Int(d)
        }

        private func number(_ keyword: String, _ value: JSONValue) throws -> Double {
            guard let d = value.double else { throw fail(keyword, "\(keyword) must be a number, is \(describeType(value))") }
            return d
        }

        private func strings(_ keyword: String, _ value: JSONValue) throws -> [String] {
            guard let elements = value.array else { throw fail(keyword, "\(keyword) must be an array of strings") }
            return try elements.map { guard let s = $0.string else { throw fail(keyword, "\(keyword) must be an array of strings") }; return s }
        }

        private func pattern(_ keyword: String, _ source: String, at tokens: [String]) throws -> CompiledPattern {
            do {
                return try ECMARegex.compile(source)
            } catch let error as ECMARegex.PatternError {
                throw compiler.fail(SchemaLocation(document: location.document, tokens: location.tokens + tokens), error.message)
            }
        }

        private func reference(_ keyword: String, _ value: JSONValue) throws -> (node: Int, anchor: String?) {
            guard let text = value.string else { throw fail(keyword, "\(keyword) must be a string (a URI reference)") }
            let path = compiler.registry.path(of: location.appending(keyword))
            let (target, anchor) = try compiler.registry.resolve(text, against: base, schemaPath: path)
            let dynamicAnchor = compiler.registry.dynamicAnchor(at: target)
            return (try compiler.reserve(target), anchor != nil && anchor == dynamicAnchor ? anchor : nil)
        }

        /// The checks of an object schema with these members, in document order, unevaluated* last.
        func checks(_ members: [(key: String, value: JSONValue)]) throws -> [KeywordCheck] {
            let schema = JSONValue.object(members)
            var checks: [KeywordCheck] = []
            var deferred: [KeywordCheck] = []
            var patterns: [(pattern: CompiledPattern, schema: Int)] = []
            if case .object(let entries)? = schema["patternProperties"] {
                for (source, _) in entries {
                    patterns.append((try pattern("patternProperties", source, at: ["patternProperties", source]), try sub("patternProperties", source)))
                }
            }
            for (keyword, value) in members {
                let path = compiler.registry.path(of: location.appending(keyword))
                if keyword == "dependencies" {
                    checks += try dependencies(value).map { KeywordCheck(keyword: keyword, schemaPath: path, check: $0) }
                    continue
                }
                guard let check = try check(keyword, value, in: schema, patterns: patterns) else { continue }
                let keywordCheck = KeywordCheck(keyword: keyword, schemaPath: path, check: check)
                if keyword.hasPrefix("unevaluated") { deferred.append(keywordCheck) } else { checks.append(keywordCheck) }
            }
            if !deferred.isEmpty { compiler.program.collectsAnnotations = true }
            return checks + deferred
        }

        /// Draft 7's `dependencies`, which 2020-12 split into dependentRequired (the arrays) and
        /// dependentSchemas (the schemas); still honoured, as the 2020-12 meta-schema still describes it.
        private func dependencies(_ value: JSONValue) throws -> [Check] {
            guard let entries = value.object else { throw fail("dependencies", "dependencies must be an object") }
            var required: [(property: String, required: [String])] = []
            var schemas: [(property: String, schema: Int)] = []
            for (property, entry) in entries {
                if entry.array != nil {
                    required.append((property, try strings("dependencies", entry)))
                } else {
                    schemas.append((property, try sub("dependencies", property)))
                }
            }
            return (required.isEmpty ? [] : [.dependentRequired(required)]) + (schemas.isEmpty ? [] : [.dependentSchemas(schemas)])
        }

        private func check(_ keyword: String, _ value: JSONValue, in schema: JSONValue,
                           patterns: [(pattern: CompiledPattern, schema: Int)]) throws -> Check? {
            switch keyword {
            case "type":
                let names = value.array ?? [value]
                var types: JSONTypes = []
                for name in names {
                    guard let s = name.string, let type = JSONTypes(name: s) else {
                        throw fail(keyword, "type must be one of \(JSONTypes.names.map { "\"\($0.0)\"" }.joined(separator: ", ")) or an array of them")
                    }
                    types.insert(type)
                }
                return .type(types)
            case "enum":
                guard let elements = value.array else { throw fail(keyword, "enum must be an array") }
                return .enumeration(elements)
            case "const": return .const(value)
            case "minimum": return .minimum(try number(keyword, value))
            case "maximum": return .maximum(try number(keyword, value))
            case "exclusiveMinimum": return .exclusiveMinimum(try number(keyword, value))
            case "exclusiveMaximum": return .exclusiveMaximum(try number(keyword, value))
            case "multipleOf":
                let d = try number(keyword, value)
                guard d > 0 else { throw fail(keyword, "multipleOf must be greater than 0") }
                return .multipleOf(d)
            case "minLength": return .minLength(try nonNegativeInteger(keyword, value))
            case "maxLength": return .maxLength(try nonNegativeInteger(keyword, value))
            case "pattern":
                guard let source = value.string else { throw fail(keyword, "pattern must be a string") }
                return .pattern(try pattern(keyword, source, at: [keyword]))
            case "minItems": return .minItems(try nonNegativeInteger(keyword, value))
            case "maxItems": return .maxItems(try nonNegativeInteger(keyword, value))
            case "uniqueItems":
                guard let b = value.bool else { throw fail(keyword, "uniqueItems must be a boolean") }
                return b ? .uniqueItems : nil
            case "minProperties": return .minProperties(try nonNegativeInteger(keyword, value))
            case "maxProperties": return .maxProperties(try nonNegativeInteger(keyword, value))
            case "required": return .required(try strings(keyword, value))
            case "dependentRequired":
                guard let entries = value.object else { throw fail(keyword, "dependentRequired must be an object") }
                return .dependentRequired(try entries.map { ($0.key, try strings(keyword, $0.value)) })
            case "$ref":
                return .ref(try reference(keyword, value).node)
            case "$dynamicRef":
                let (node, anchor) = try reference(keyword, value)
                if let anchor { return .dynamicRef(initial: node, anchor: anchor) }
                return .ref(node)
            case "allOf", "anyOf", "oneOf", "prefixItems":
                guard let elements = value.array, !elements.isEmpty else { throw fail(keyword, "\(keyword) must be a non-empty array of schemas") }
                let nodes = try elements.indices.map { try sub(keyword, String($0)) }
                switch keyword {
                case "allOf": return .allOf(nodes)
                case "anyOf": return .anyOf(nodes)
                case "oneOf": return .oneOf(nodes)
                default: return .prefixItems(nodes)
                }
            case "not": return .not(try sub(keyword))
            case "if":
                let then = schema["then"] == nil ? nil : try sub("then")
                let otherwise = schema["else"] == nil ? nil : try sub("else")
                return .conditional(if: try sub(keyword), then: then, else: otherwise)
            case "then", "else":
                // Without `if` they do nothing, but their subschemas are still checked.
                if schema["if"] == nil { _ = try sub(keyword) }
                return nil
            case "dependentSchemas", "properties", "$defs", "definitions":
                guard let entries = value.object else { throw fail(keyword, "\(keyword) must be an object of schemas") }
                let nodes = try entries.map { ($0.key, try sub(keyword, $0.key)) }
                switch keyword {
                case "dependentSchemas": return .dependentSchemas(nodes)
                case "properties": return .properties(Dictionary(nodes, uniquingKeysWith: { _, last in last }))
                default: return nil
                }
            case "patternProperties":
                guard value.object != nil else { throw fail(keyword, "patternProperties must be an object of schemas") }
                return .patternProperties(patterns)
            case "additionalProperties":
                let named = Set(schema["properties"]?.object?.map(\.key) ?? [])
                return .additionalProperties(try sub(keyword), named: named, patterns: patterns.map(\.pattern))
            case "propertyNames": return .propertyNames(try sub(keyword))
            case "items": return .items(try sub(keyword), after: schema["prefixItems"]?.array?.count ?? 0)
            case "contains":
                let min = try schema["minContains"].map { try nonNegativeInteger("minContains", $0) } ?? 1
                let max = try schema["maxContains"].map { try nonNegativeInteger("maxContains", $0) }
                return .contains(try sub(keyword), min: min, max: max)
            case "unevaluatedProperties": return .unevaluatedProperties(try sub(keyword))
            case "unevaluatedItems": return .unevaluatedItems(try sub(keyword))
            case "contentSchema":
                _ = try sub(keyword)  // an annotation: checked as a schema, never applied
                return nil
            default:
                // Annotations ($comment, title, format, ...) and unknown keywords: no check.
                return nil
            }
        }
    }
}

/// "a string", "an integer", ... for messages.
func describeType(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool: return "a boolean"
    case .number(let d): return d.rounded() == d ? "an integer" : "a number"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
}
