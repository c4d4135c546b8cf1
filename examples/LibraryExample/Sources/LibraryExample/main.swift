// Restores the faces in one photo with whatever models are installed and writes the result.
import FaceRestore
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    print("usage: LibraryExample INPUT OUTPUT")
    exit(2)
}
do {
    let restorer = try Restorer()                                // the first installed face model
    let result = try restorer.restore(file: arguments[1])        // decode, detect, restore, paste back
    try result.writeImage(to: arguments[2])                      // atomically, alpha kept
    for warning in result.warnings { print("warning: \(warning)") }
    print("\(arguments[2]): \(result.faces.count) face(s) restored by \(restorer.modelName)")
} catch {
    print("error: \(error)")
    exit(1)
}
