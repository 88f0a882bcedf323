// Prints Kafka's config catalogs, one key per line, tab-separated: the catalogs kafka-bootstrap and
// the fleet manager validate against. `broker` lines: key, type, dynamic update mode (read-only,
// per-broker, cluster-wide: how a change reaches a running broker), validator. `topic` lines: key,
// type, validator. Validators: `range:MIN:MAX` (either side may be empty), `range-or:MIN:MAX:EXTRA`,
// `one-of:A|B`, `one-of-ci:A|B` (case-insensitive), `list-of:A|B`, `non-empty`, `-` (none or one
// that cannot be expressed; Kafka still checks it).
// Regenerate with `make broker-config-keys` after a Kafka version bump.
import org.apache.kafka.common.config.ConfigDef;
import java.lang.reflect.Field;
import java.util.*;

public class DumpKafkaConfigCatalog {
  static Object field(Object o, String name) throws Exception {
    Class<?> c = o.getClass();
    while (c != null) {
      try {
        Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f.get(o);
      } catch (NoSuchFieldException e) {
        c = c.getSuperclass();
      }
    }
    return null;
  }

  static String num(Object n) {
    if (n == null) return "";
    String s = n.toString();
    return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
  }

  static String values(String text) {
    // "[a, b, c]" or "(case insensitive) [a, b]"
    int open = text.indexOf('['), close = text.lastIndexOf(']');
    if (open < 0 || close < open) return null;
    return String.join("|", text.substring(open + 1, close).split(",\\s*"));
  }

  static String validator(ConfigDef.ConfigKey k) throws Exception {
    ConfigDef.Validator v = k.validator;
    if (v == null) return "-";
    String kind = v.getClass().getSimpleName();
    String text = v.toString();
    switch (kind) {
      case "Range":
        return "range:" + num(field(v, "min")) + ":" + num(field(v, "max"));
      case "ValidString":
        return "one-of:" + values(text);
      case "CaseInsensitiveValidString":
        return "one-of-ci:" + values(text);
      case "ValidList":
        return "list-of:" + values(text);
      case "NonEmptyString":
        return "non-empty";
      default:
        // compression.gzip.level: "[1,...,9] or -1"
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\s*\\[(-?\\d+),\\.\\.\\.,(-?\\d+)\\] or (-?\\d+)").matcher(text);
        if (m.matches()) return "range-or:" + m.group(1) + ":" + m.group(2) + ":" + m.group(3);
        return "-";
    }
  }

  public static void main(String[] a) throws Exception {
    Map<String, String> modes = kafka.server.DynamicBrokerConfig$.MODULE$.dynamicConfigUpdateModes();
    for (ConfigDef.ConfigKey k : kafka.server.KafkaConfig.configDef().configKeys().values()) {
      String mode = modes.getOrDefault(k.name, "read-only");
      System.out.println("broker\t" + k.name + "\t" + k.type + "\t" + mode + "\t" + validator(k));
    }
    Map<String, ConfigDef.ConfigKey> topic = org.apache.kafka.storage.internals.log.LogConfig.configKeys();
    for (ConfigDef.ConfigKey k : topic.values()) {
      System.out.println("topic\t" + k.name + "\t" + k.type + "\t-\t" + validator(k));
    }
  }
}
