// The applicator keywords of draft 2020-12: those that apply subschemas, in place ($ref, allOf, anyOf,
// oneOf, not, if/then/else, dependentSchemas) or to members and elements (properties, items, contains,
// unevaluated*, ...), and the annotations they leave for unevaluatedProperties/unevaluatedItems.
// Validation recurses through here: each keyword has its own function, so a level of recursion costs
// only the frames of the keywords it passes through (a debug build reserves every local of a function).
import PrismJSON

extension SchemaEvaluator {
    /// Applies one keyword to `instance`; adds what it evaluated to `annotations`.
    mutating func apply(_ keywordCheck: KeywordCheck, to instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        switch keywordCheck.check {
        case .ref(let target): return evaluate(target, instance, &annotations)
        case .dynamicRef(let initial, let anchor): return evaluate(dynamicTarget(initial: initial, anchor: anchor), instance, &annotations)
        case .allOf(let nodes): return allOf(nodes, instance, &annotations)
        case .anyOf(let nodes): return anyOf(keywordCheck, nodes, instance, &annotations)
        case .oneOf(let nodes): return oneOf(keywordCheck, nodes, instance, &annotations)
        case .not(let node): return not(keywordCheck, node, instance)
        case .conditional(let condition, let then, let otherwise): return conditional(condition, then, otherwise, instance, &annotations)
        case .dependentSchemas(let dependencies): return dependentSchemas(dependencies, instance, &annotations)
        case .properties(let schemas): return eachMember(of: instance, &annotations) { name in schemas[name] }
        case .patternProperties(let patterns): return patternProperties(keywordCheck, patterns, instance, &annotations)
        case .additionalProperties(let node, let named, let patterns):
            return additionalProperties(keywordCheck, node, named, patterns, instance, &annotations)
        case .unevaluatedProperties(let node):
            let evaluated = annotations.properties
            return eachMember(of: instance, &annotations) { name in evaluated.contains(name) ? nil : node }
        case .propertyNames(let node): return propertyNames(node, instance)
        case .prefixItems(let nodes): return prefixItems(nodes, instance, &annotations)
        case .items(let node, let after): return eachElement(of: instance, &annotations) { i in i >= after ? node : nil }
        case .unevaluatedItems(let node):
            let evaluated = annotations
            return eachElement(of: instance, &annotations) { i in evaluated.evaluated(item: i) ? nil : node }
        case .contains(let node, let min, let max): return contains(keywordCheck, node, min, max, instance, &annotations)
        default: return checkAssertion(keywordCheck, instance)
        }
    }

    private mutating func allOf(_ nodes: [Int], _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        var valid = true
        for node in nodes where !evaluate(node, instance, &annotations) { valid = false }
        return valid
    }

    private mutating func anyOf(_ keywordCheck: KeywordCheck, _ nodes: [Int], _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        var failures: [[SchemaViolation]] = []
        for node in nodes {
            // Every alternative is evaluated, not just up to the first match: each valid one's annotations count.
            let (valid, violations) = trial(node, instance, &annotations)
            if !valid { failures.append(violations) }
        }
        guard failures.count == nodes.count else { return true }
        report(keywordCheck.keyword, keywordCheck.schemaPath, "must match at least one schema of anyOf: " + summary(failures))
        return false
    }

    private mutating func oneOf(_ keywordCheck: KeywordCheck, _ nodes: [Int], _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        var failures: [[SchemaViolation]] = []
        var matched: [Int] = []
        var matchedAnnotations = Annotations()
        for (i, node) in nodes.enumerated() {
            var branch = Annotations()
            let (valid, violations) = trial(node, instance, &branch)
            if valid {
                matched.append(i)
                matchedAnnotations = branch
            } else {
                failures.append(violations)
            }
        }
        if matched.count == 1 {
            annotations.merge(matchedAnnotations)
            return true
        }
        report(keywordCheck.keyword, keywordCheck.schemaPath, matched.isEmpty
            ? "must match exactly one schema of oneOf, matches none: " + summary(failures)
            : "must match exactly one schema of oneOf, matches \(matched.count): schemas \(matched.map(String.init).joined(separator: ", "))")
        return false
    }

    private mutating func not(_ keywordCheck: KeywordCheck, _ node: Int, _ instance: JSONValue) -> Bool {
        var discarded = Annotations()
        guard trial(node, instance, &discarded).valid else { return true }
        report(keywordCheck.keyword, keywordCheck.schemaPath, "must not match the schema in not")
        return false
    }

    private mutating func conditional(_ condition: Int, _ then: Int?, _ otherwise: Int?, _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        // The condition's own violations are no fault of the instance: they only choose the branch.
        let branch = trial(condition, instance, &annotations).valid ? then : otherwise
        guard let branch else { return true }
        return evaluate(branch, instance, &annotations)
    }

    private mutating func dependentSchemas(_ dependencies: [(property: String, schema: Int)], _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        guard instance.object != nil else { return true }
        var valid = true
        for (property, node) in dependencies where instance[property] != nil {
            if !evaluate(node, instance, &annotations) { valid = false }
        }
        return valid
    }

    private mutating func patternProperties(_ keywordCheck: KeywordCheck, _ patterns: [(pattern: CompiledPattern, schema: Int)],
                                            _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        guard let members = instance.object else { return true }
        var valid = true
        for (position, member) in members.enumerated() {
            for (pattern, node) in patterns {
                guard let matched = matches(pattern, member.key, keywordCheck, &valid), matched else { continue }
                if !evaluate(node, child: member.value, key: .key(member.key), position: position) { valid = false }
                if collects { annotations.properties.insert(member.key) }
            }
        }
        return valid
    }

    /// Applies the schema to the members neither `properties` names nor a `patternProperties` pattern matches.
    private mutating func additionalProperties(_ keywordCheck: KeywordCheck, _ node: Int, _ named: Set<String>, _ patterns: [CompiledPattern],
                                               _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        guard let members = instance.object else { return true }
        var valid = true
        members: for (position, member) in members.enumerated() where !named.contains(member.key) {
            for pattern in patterns {
                guard let matched = matches(pattern, member.key, keywordCheck, &valid) else { continue members }
                if matched { continue members }
            }
            if !evaluate(node, child: member.value, key: .key(member.key), position: position) { valid = false }
            if collects { annotations.properties.insert(member.key) }
        }
        return valid
    }

    /// `pattern.matches(name)` for a member name; a match stopped by the time limit is reported as a
    /// violation of `keywordCheck` (clearing `valid`) and gives nil.
    private mutating func matches(_ pattern: CompiledPattern, _ name: String, _ keywordCheck: KeywordCheck, _ valid: inout Bool) -> Bool? {
        if let matched = pattern.matches(name) { return matched }
        report(keywordCheck.keyword, keywordCheck.schemaPath, Self.timeout(pattern, name))
        valid = false
        return nil
    }

    private mutating func propertyNames(_ node: Int, _ instance: JSONValue) -> Bool {
        guard let members = instance.object else { return true }
        var valid = true
        for (position, member) in members.enumerated() {
            let (ok, violations) = trial(node, child: .string(member.key), key: .key(member.key), position: position)
            guard !ok else { continue }
            valid = false
            // Reported at the object, naming the member: a name is not a location of its own.
            for v in violations { report(v.keyword, v.schemaPath, "property name \"\(member.key)\" " + v.message) }
        }
        return valid
    }

    private mutating func prefixItems(_ nodes: [Int], _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        guard let elements = instance.array else { return true }
        var valid = true
        for (i, node) in nodes.enumerated() where i < elements.count {
            if !evaluate(node, child: elements[i], key: .index(i), position: i) { valid = false }
        }
        annotations.itemPrefix = max(annotations.itemPrefix, min(nodes.count, elements.count))
        return valid
    }

    private mutating func contains(_ keywordCheck: KeywordCheck, _ node: Int, _ min: Int, _ max: Int?, _ instance: JSONValue, _ annotations: inout Annotations) -> Bool {
        guard let elements = instance.array else { return true }
        var matched = 0
        for (i, element) in elements.enumerated() where trial(node, child: element, key: .index(i), position: i).valid {
            matched += 1
            if collects { annotations.items.insert(i) }
        }
        if matched < min {
            report(keywordCheck.keyword, keywordCheck.schemaPath, "must contain at least \(Self.count(min, "item")) matching the contains schema, has \(matched)")
            return false
        }
        if let max, matched > max {
            report(keywordCheck.keyword, keywordCheck.schemaPath, "must contain at most \(Self.count(max, "item")) matching the contains schema, has \(matched)")
            return false
        }
        return true
    }

    /// Applies `schema(name)` (nil: none) to each member of an object instance; each member a schema
    /// applied to counts as evaluated.
    private mutating func eachMember(of instance: JSONValue, _ annotations: inout Annotations, _ schema: (String) -> Int?) -> Bool {
        guard let members = instance.object else { return true }
        var valid = true
        for (position, member) in members.enumerated() {
            guard let node = schema(member.key) else { continue }
            if !evaluate(node, child: member.value, key: .key(member.key), position: position) { valid = false }
            if collects { annotations.properties.insert(member.key) }
        }
        return valid
    }

    /// Applies `schema(index)` (nil: none) to each element of an array instance; once it applies to
    /// any, every element counts as evaluated (it applies to all the rest).
    private mutating func eachElement(of instance: JSONValue, _ annotations: inout Annotations, _ schema: (Int) -> Int?) -> Bool {
        guard let elements = instance.array else { return true }
        var valid = true, applied = false
        for (i, element) in elements.enumerated() {
            guard let node = schema(i) else { continue }
            applied = true
            if !evaluate(node, child: element, key: .index(i), position: i) { valid = false }
        }
        if applied { annotations.allItems = true }
        return valid
    }

    /// The first violation of each failed alternative, so that a person sees why none matched.
    private func summary(_ failures: [[SchemaViolation]]) -> String {
        let here = instancePath
        var parts = failures.prefix(SchemaLimits.maxQuotedBranches).compactMap { violations -> String? in
            guard let first = violations.first else { return nil }
            return (first.instancePath == here ? "" : first.instancePath + ": ") + first.message
        }
        if failures.count > SchemaLimits.maxQuotedBranches { parts.append("…") }
        return parts.joined(separator: "; or ")
    }
}
