// The report's means: Deg. leaves pairs under 1° out (as VQFR's script), set metrics (FID) join
// the per-image means, and every format carries them.

import FaceRestoreEvaluation
import Foundation
import Testing

@Suite struct EvaluationReports {
    let report = EvaluationReport(metrics: [.psnr, .fid, .deg], rows: [
        EvaluationRow(name: "a.png", values: ["psnr": 30, "deg": 0.5]),
        EvaluationRow(name: "b.png", values: ["psnr": 20, "deg": 10]),
        EvaluationRow(name: "c.png", values: ["psnr": 10, "deg": 20]),
    ], failures: [], settings: [:], setValues: ["fid": 42])

    @Test func degLeavesPairsUnderOneDegreeOutAndSetValuesJoinTheMeans() throws {
        #expect(report.means == ["psnr": 20, "deg": 15, "fid": 42])
        let table = report.table(perImage: true)
        #expect(table.contains("Deg. ↓") && table.contains("FID ↓") && table.contains("42.00") && table.contains("15.00"), "\(table)")
        #expect(report.csv().hasSuffix("mean,20.0,42.0,15.0\n"), "\(report.csv())")
        let decoded = try JSONDecoder().decode(EvaluationReport.self, from: JSONEncoder().encode(report))
        #expect(decoded.setValues == ["fid": 42] && decoded.means == report.means)
    }
}
