package io.sluice.core.model;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

class StateKeysTest {
    @Test
    void pairsThatAJoinedKeyWouldMixStayApart() {
        assertThat(StateKeys.of("acme", "staging:1")).isEqualTo("acme:staging:1");
        assertThat(StateKeys.of("acme:staging", "1")).isEqualTo("acme\\:staging:1");
        Set<String> keys = new HashSet<>();
        List<String[]> pairs = List.of(new String[] {"a", "b:c"}, new String[] {"a:b", "c"}, new String[] {"a\\", ":b"}, new String[] {"a\\:", "b"},
                new String[] {"a", "\\:b"}, new String[] {"", "a:b"}, new String[] {":", "ab"}, new String[] {"a:b:", ""});
        for (String[] p : pairs) {
            assertThat(keys.add(StateKeys.of(p[0], p[1]))).as(p[0] + " / " + p[1]).isTrue();
        }
    }

    @Test
    void anIdWithoutColonOrBackslashKeepsTheKeyOfEarlierBuilds() {
        assertThat(StateKeys.of("app-7", "user:42")).isEqualTo(UserEvent.keyOf("app-7", "user:42"));
        assertThat(new Campaign("welcome", "app-7", "signup", 1, 1, "m", 1, true).stateKey()).isEqualTo("app-7:welcome");
    }
}
