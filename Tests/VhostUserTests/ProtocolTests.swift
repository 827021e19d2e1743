import Testing
import VhostUser

@Suite("vhost-user protocol")
struct ProtocolTests {
    @Test func placeholder() { #expect(VhostUserRequest.getFeatures.name == "GET_FEATURES") }
}
