// Prints every Kafka broker config key and its type, one per line: the catalog kafka-bootstrap validates against.
// Regenerate with `make broker-config-keys` after a Kafka version bump.
import org.apache.kafka.common.config.ConfigDef;
public class DumpBrokerConfigKeys {
  public static void main(String[] a) {
    ConfigDef d = kafka.server.KafkaConfig.configDef();
    for (ConfigDef.ConfigKey k : d.configKeys().values()) {
      System.out.println(k.name + "\t" + k.type);
    }
  }
}
