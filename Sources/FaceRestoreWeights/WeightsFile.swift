// Opening any supported weights file: format sniffing, then unwrapping the state dict.

import Foundation

public enum WeightsFormat: String, Sendable {
    case torchZip = "PyTorch (zip)"
    case torchLegacy = "PyTorch (legacy)"
    case safetensors = "safetensors"
    case onnx = "ONNX"
}

public enum WeightsFile {
    /// Keys that wrap a state dict inside a checkpoint, in order of preference (BasicSR saves
    /// `params_ema` and `params`; others use `state_dict` or StyleGAN2's `g_ema`).
    public static let wrapperKeys = ["params_ema", "params", "state_dict", "g_ema"]

    /// Detects the format from the file's first bytes.
    public static func format(of path: String) throws -> WeightsFormat {
        try format(of: MappedFile(path: path))
    }

    static func format(of file: MappedFile) throws -> WeightsFormat {
        let b = file.bytes
        if b.count >= 4, b[0] == 0x50, b[1] == 0x4b, b[2] == 0x03, b[3] == 0x04 { return .torchZip }
        if b.count >= 2, b[0] == 0x80, b[1] == 0x02 {
            guard b.count >= TorchCheckpoint.legacyMagic.count else { throw WeightsError.truncated(path: file.path, detail: "pickle header cut short") }
            return .torchLegacy
        }
        if b.count >= 9 {
            let len = UInt64(littleEndian: b.loadUnaligned(as: UInt64.self))
            if len > 1, len < UInt64(b.count), b[8] == UInt8(ascii: "{") { return .safetensors }
        }
        // ONNX has no magic: a ModelProto starts with field 1 (ir_version, a varint).
        if b.count >= 2, b[0] == 0x08, file.path.lowercased().hasSuffix(".onnx") { return .onnx }
        if b.count >= 2, b[0] == 0x50, b[1] == 0x4b { throw WeightsError.truncated(path: file.path, detail: "zip header cut short") }
        throw WeightsError.unknownFormat(path: file.path)
    }

    /// Loads the named tensors of a checkpoint: unwraps `params_ema`/`params`/`state_dict`/`g_ema`
    /// (first found), flattens nested dicts with dots, and strips a common `module.` prefix.
    /// `verifyChecksums`: check every member of a zip checkpoint against its CRC-32 (about 0.6 ms
    /// per MB; off only to look inside a file known to be damaged, or to save that time).
    public static func load(path: String, verifyChecksums: Bool = true) throws -> (StateDict, WeightsFormat) {
        let file = try MappedFile(path: path)
        let format = try format(of: file)
        switch format {
        case .safetensors:
            return (try SafeTensors.read(file), format)
        case .onnx:
            return (try ONNXModel(file).initializers, format)
        case .torchZip, .torchLegacy:
            let (root, storages) = format == .torchZip ? try TorchCheckpoint.readZip(file, verifyChecksums: verifyChecksums) : try TorchCheckpoint.readLegacy(file)
            defer { PickleValue.dismantle([root]) }
            return (try stateDict(from: root, storages: storages, path: path), format)
        }
    }

    /// Only the chosen dict's tensors are materialized; other values (a Lightning checkpoint's
    /// optimizer states, callbacks, hyper-parameters) are skipped unread. An opaque value (a pickle
    /// global off the allow-list) as the checkpoint, as the chosen wrapper or inside the chosen
    /// dict is refused with the global's name.
    static func stateDict(from root: PickleValue, storages: [String: ByteRegion], path: String) throws -> StateDict {
        if let name = root.opaqueName { throw WeightsError.disallowedGlobal(path: path, name: name, use: "the checkpoint") }
        guard case .dict(let top) = root else {
            throw WeightsError.unsupported(path: path, detail: "the checkpoint holds no dict of tensors")
        }
        var chosen = top
        var wrapper: String?
        var skipped: [String] = []
        let topKeys = top.keys.compactMap(\.stringValue)
        let hasTopTensors = top.values.contains { if case .tensor = $0 { return true }; return false }
        // The first wrapper key that holds a dict, or an opaque value (refused below).
        if !hasTopTensors, let (key, value) = wrapperKeys.lazy.compactMap({ k -> (String, PickleValue)? in
            guard let i = top.keys.firstIndex(where: { $0.stringValue == k }) else { return nil }
            switch top.values[i] {
            case .dict, .opaque: return (k, top.values[i])
            default: return nil
            }
        }).first {
            if let name = value.opaqueName {
                throw WeightsError.disallowedGlobal(path: path, name: name, use: "the state dict '\(key)'")
            }
            if case .dict(let inner) = value {
                chosen = inner
                wrapper = key
                skipped = topKeys.filter { $0 != key }
            }
        } else if !hasTopTensors, topKeys.contains("pytorch-lightning_version") || topKeys.contains("optimizer_states") {
            // A training checkpoint saved without its weights: say so instead of walking its
            // callbacks and optimizer state.
            throw WeightsError.unsupported(path: path, detail: "a Lightning checkpoint without 'state_dict' (it holds "
                + topKeys.prefix(8).map { "'\($0.prefix(40))'" }.joined(separator: ", ") + (topKeys.count > 8 ? ", …" : "")
                + "): no network weights to load")
        }
        var names: [String] = []
        var tensors: [String: WeightTensor] = [:]
        // Nested dicts flatten to dotted names, depth first in key order, with an explicit stack:
        // a hostile file may nest deeply or contain itself.
        let maxDepth = 64
        var pending: [(dict: PickleDict, prefix: String, next: Int, depth: Int)] = [(chosen, "", 0, 1)]
        var entered: Set<ObjectIdentifier> = [ObjectIdentifier(chosen)]
        while let top = pending.last {
            guard top.next < top.dict.keys.count else { pending.removeLast(); continue }
            pending[pending.count - 1].next += 1
            let (k, v) = (top.dict.keys[top.next], top.dict.values[top.next])
            let key = top.prefix + (k.stringValue ?? k.intValue.map(String.init) ?? "?")
            switch v {
            case .tensor(let t):
                if tensors[key] == nil { names.append(key) }
                tensors[key] = try TorchCheckpoint.materialize(t, storages: storages, path: path, name: key)
            case .dict(let inner):
                guard entered.insert(ObjectIdentifier(inner)).inserted else {
                    throw WeightsError.corrupt(path: path, detail: "the dict at '\(key)' also appears elsewhere in the file (a cycle?)")
                }
                guard top.depth < maxDepth else {
                    throw WeightsError.corrupt(path: path, detail: "dicts nested deeper than \(maxDepth) levels at '\(key.prefix(200))'")
                }
                pending.append((inner, key + ".", 0, top.depth + 1))
            case .opaque(let name):
                throw WeightsError.disallowedGlobal(path: path, name: name, use: "entry '\(key.prefix(200))'")
            default:
                skipped.append(key)
            }
        }
        guard !names.isEmpty else {
            throw WeightsError.unsupported(path: path, detail: "no tensors found (top-level keys: \(topKeys.prefix(8).joined(separator: ", ")))")
        }
        var stripped: String?
        if names.allSatisfy({ $0.hasPrefix("module.") }) {
            stripped = "module."
            var renamed: [String: WeightTensor] = [:]
            names = names.map { String($0.dropFirst(7)) }
            for (k, v) in tensors { renamed[String(k.dropFirst(7))] = v }
            tensors = renamed
        }
        return StateDict(names: names, tensors: tensors, wrapper: wrapper, strippedPrefix: stripped, skippedEntries: skipped)
    }
}
