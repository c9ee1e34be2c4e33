// Validation of one instance against a SchemaProgram: a recursive walk of the nodes over the instance
// that records a violation per failed check, tracks the dynamic scope for `$dynamicRef`, collects the
// annotations unevaluatedProperties/unevaluatedItems need (only when the schema has them), and guards
// against `$ref` loops and hostile nesting. The keywords themselves are in SchemaApplicators.swift
// and SchemaAssertions.swift.
import PrismJSON

struct SchemaEvaluator {
    let program: SchemaProgram
    /// Whether annotations are collected: only a schema with unevaluated* keywords needs them.
    let collects: Bool
    /// The instance location being evaluated: member names or element indices, and their positions
    /// in the instance, which order the violations as the instance's own text does.
    private var keys: [PathToken] = []
    private var positions: [Int] = []
    /// Resources entered, outermost first: the dynamic scope.
    private var scope: [Int] = []
    /// Nodes being evaluated, and where those at the current instance location start: meeting one of
    /// those again is a loop (evaluation went round without reaching into the instance).
    private var active: [Int] = []
    private var activeHere = 0
    private var depth = 0
    private var found: [(position: [Int], violation: SchemaViolation)] = []

    /// What the keywords of a successful subschema evaluated: the unevaluated* keywords apply to the rest.
    struct Annotations {
        var properties: Set<String> = []
        var allItems = false
        var itemPrefix = 0
        var items: Set<Int> = []

        mutating func merge(_ other: Annotations) {
            properties.formUnion(other.properties)
            allItems = allItems || other.allItems
            itemPrefix = max(itemPrefix, other.itemPrefix)
            items.formUnion(other.items)
        }

        func evaluated(item index: Int) -> Bool { allItems || index < itemPrefix || items.contains(index) }
    }

    /// A step of an instance path: an object member or an array element.
    enum PathToken {
        case key(String)
        case index(Int)

        var text: String {
            switch self {
            case .key(let key): return key
            case .index(let i): return String(i)
            }
        }
    }

    init(program: SchemaProgram) {
        self.program = program
        collects = program.collectsAnnotations
    }

    /// Every violation of `instance`, in the instance's document order (a location before what is in
    /// it), checks of one location in the schema's order.
    static func validate(_ instance: JSONValue, against program: SchemaProgram) -> [SchemaViolation] {
        var evaluator = SchemaEvaluator(program: program)
        var annotations = Annotations()
        _ = evaluator.evaluate(program.root, instance, &annotations)
        return evaluator.found.enumerated().sorted { a, b in
            a.element.position.lexicographicallyPrecedes(b.element.position) || (a.element.position == b.element.position && a.offset < b.offset)
        }.map(\.element.violation)
    }

    /// Records a violation at the current instance location.
    mutating func report(_ keyword: String, _ schemaPath: String, _ message: String) {
        found.append((positions, SchemaViolation(instancePath: instancePath, keyword: keyword, schemaPath: schemaPath, message: message)))
    }

    /// Evaluates node `index` against `instance` at the current location; on success the node's
    /// annotations are added to `annotations`.
    @discardableResult
    mutating func evaluate(_ index: Int, _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        let node = program.nodes[index]
        if let constant = node.constant {
            if !constant { refuse(node) }
            return constant
        }
        guard depth < SchemaLimits.maxEvaluationDepth else {
            report("depth", node.location, "nested deeper than \(SchemaLimits.maxEvaluationDepth) subschema evaluations: not validated")
            return false
        }
        guard !active[activeHere...].contains(index) else {
            report("$ref", node.location, "the schema refers to itself here without reaching into the value: an endless $ref loop")
            return false
        }
        depth += 1
        active.append(index)
        let entersResource = scope.last != node.resource
        if entersResource { scope.append(node.resource) }
        defer {
            if entersResource { scope.removeLast() }
            active.removeLast()
            depth -= 1
        }
        var own = Annotations()
        var valid = true
        for check in node.checks where !apply(check, to: instance, &own) { valid = false }
        if valid { annotations.merge(own) }
        return valid
    }

    /// A `false` schema's violation, worded for where it stands.
    private mutating func refuse(_ node: SchemaNode) {
        let key = keys.last?.text ?? ""
        switch node.refusal {
        case .property: report(node.refusedBy, node.location, "property \"\(key)\" is not allowed")
        case .item: report(node.refusedBy, node.location, "item \(key) is not allowed")
        case .value: report(node.refusedBy, node.location, "no value is allowed here")
        }
    }

    /// Evaluates a subschema on a member or element of the current instance.
    @discardableResult
    mutating func evaluate(_ index: Int, child value: JSONValue, key: PathToken, position: Int) -> Bool {
        keys.append(key)
        positions.append(position)
        let outerActiveHere = activeHere
        activeHere = active.count
        var discarded = Annotations()
        let valid = evaluate(index, value, &discarded)
        activeHere = outerActiveHere
        keys.removeLast()
        positions.removeLast()
        return valid
    }

    /// Evaluates a subschema and takes back the violations it recorded: for anyOf, oneOf, not, if and
    /// contains, whose own verdict replaces its subschemas'.
    mutating func trial(_ index: Int, _ instance: JSONValue, _ annotations: inout Annotations) -> (valid: Bool, violations: [SchemaViolation]) {
        let mark = found.count
        let valid = evaluate(index, instance, &annotations)
        let violations = found[mark...].map(\.violation)
        found.removeSubrange(mark...)
        return (valid, violations)
    }

    /// `trial` on a member or element.
    mutating func trial(_ index: Int, child value: JSONValue, key: PathToken, position: Int) -> (valid: Bool, violations: [SchemaViolation]) {
        let mark = found.count
        let valid = evaluate(index, child: value, key: key, position: position)
        let violations = found[mark...].map(\.violation)
        found.removeSubrange(mark...)
        return (valid, violations)
    }

    /// The target of a `$dynamicRef`: the outermost resource in the dynamic scope with the anchor.
    func dynamicTarget(initial: Int, anchor: String) -> Int {
        for resource in scope {
            if let node = program.resources[resource].dynamicAnchors[anchor] { return node }
        }
        return initial
    }

    /// The current instance location as a JSON Pointer.
    var instancePath: String { JSONPointer.pointer(keys.lazy.map(\.text)) }
}
