import QEMULaunch
import Testing

@Suite("QEMU option syntax")
struct QEMUPropertiesTests {
    func items(_ value: String, _ implied: String? = "type") throws -> [String] {
        try QEMUProperties(parsing: value, impliedKey: implied).items.map { "\($0.key)=\($0.value)" }
    }

    @Test func propertiesAsQEMUReadsThem() throws {
        #expect(try items("microvm,x-option-roms=off,rtc") == ["type=microvm", "x-option-roms=off", "rtc=on"])
        #expect(try items("accel=tcg") == ["accel=tcg"])
        #expect(try items("file,path=a,,b,,,id=c") == ["type=file", "path=a,b,", "id=c"])
        #expect(try items("") == ["type="])
        #expect(try items("x=1,", nil) == ["x=1"])
        #expect(try items("{\"qom-type\": \"memory-backend-memfd\", \"size\": 1024, \"share\": false, \"x\": {\"a\": 1}}")
                == ["qom-type=memory-backend-memfd", "share=off", "size=1024"])
        let p = try QEMUProperties(parsing: "pc,accel=kvm,accel=tcg,share=yes,pcie=maybe", impliedKey: "type")
        #expect(p["accel"] == "tcg" && p.flag("share") == true && p.flag("pcie") == nil && p.flag("nothing") == nil)
    }

    @Test func optionsTakeTheNextWordUnlessTheyAreFlags() throws {
        let options = try QEMUOption.split(["-nographic", "--m", "-5", "disk.img", "-S", "-append", "-m 1G", "-M", "q35"])
        #expect(options.map(\.name) == ["nographic", "m", "S", "append", "machine"])
        #expect(options.map(\.value) == [nil, "-5", nil, "-m 1G", "q35"])
        #expect(options.map(\.written) == ["-nographic", "--m -5", "-S", "-append -m 1G", "-M q35"])
    }

    @Test func memorySizes() {
        #expect(QEMUMemorySize.ram("256") == 256 << 20)
        #expect(QEMUMemorySize.ram("256M") == 256 << 20)
        #expect(QEMUMemorySize.ram("1000") == 1000 << 20)
        #expect(QEMUMemorySize.ram("size=4G,maxmem=8G") == 4 << 30)
        #expect(QEMUMemorySize.ram("12345B") == 16384)      // rounded up to 8 KiB, as QEMU does
        #expect(QEMUMemorySize.ram("0.5g") == 512 << 20)
        #expect(QEMUMemorySize.ram("maxmem=8G") == 128 << 20)
        for bad in ["12X", "M", "", "1.5", "1.G", "-1M", "size=", "99999999999999999999", "20E", "٣M"] {
            #expect(QEMUMemorySize.ram(bad) == nil, "\(bad)")
        }
        #expect(QEMUMemorySize.text(1 << 30) == "1G" && QEMUMemorySize.text(1536 << 20) == "1536M" && QEMUMemorySize.text(8192) == "8K"
                && QEMUMemorySize.text(1000) == "1000" && QEMUMemorySize.text(0) == "0")
    }

    @Test func shellQuoting() {
        #expect(ShellQuoting.line(["qemu-system-x86_64", "-append", "console=ttyS0 quiet", "-M", "microvm,memory-backend=m", "", "it's", "a$b"])
                == "qemu-system-x86_64 -append 'console=ttyS0 quiet' -M microvm,memory-backend=m '' 'it'\\''s' 'a$b'")
    }

    @Test func theAcceleratorQEMUPicks() throws {
        func chosen(_ words: [String], program: String = "qemu-system-x86_64", kvm: Bool) throws -> String {
            let options = try QEMUOption.split(words)
            let machine = QEMUProperties(try options.filter { $0.name == "machine" }.flatMap {
                try QEMUProperties(parsing: $0.value ?? "", impliedKey: "type").items
            })
            return QEMUAccelerator.chosen(program: program, options: options, machine: machine, kvmAvailable: kvm)
        }
        #expect(try chosen([], kvm: true) == "tcg")
        #expect(try chosen([], program: "qemu-kvm", kvm: true) == "kvm")
        #expect(try chosen([], program: "qemu-kvm", kvm: false) == "tcg")
        #expect(try chosen(["-accel", "kvm", "-accel", "tcg"], kvm: false) == "tcg")
        #expect(try chosen(["-accel", "kvm", "-accel", "tcg"], kvm: true) == "kvm")
        #expect(try chosen(["-accel", "kvm"], kvm: false) == "kvm")   // QEMU will say it cannot
        #expect(try chosen(["-accel", "accel=tcg,thread=single"], kvm: true) == "tcg")
        #expect(try chosen(["-M", "q35,accel=xen:tcg"], kvm: false) == "xen")
    }
}
