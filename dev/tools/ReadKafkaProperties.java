// Reads a server.properties file the way a Kafka broker does (Utils.loadProps: java.util.Properties
// from an InputStream, ISO-8859-1) and prints every entry as one JSON object, keys sorted, so a test
// can compare what kafka-bootstrap rendered with what Kafka will read.
import java.util.Properties;
import java.util.TreeMap;

public class ReadKafkaProperties {
  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  public static void main(String[] args) throws Exception {
    Properties p = org.apache.kafka.common.utils.Utils.loadProps(args[0]);
    TreeMap<String, String> sorted = new TreeMap<>();
    for (String k : p.stringPropertyNames()) sorted.put(k, p.getProperty(k));
    StringBuilder out = new StringBuilder("{");
    for (var e : sorted.entrySet()) {
      if (out.length() > 1) out.append(',');
      out.append(quote(e.getKey())).append(':').append(quote(e.getValue()));
    }
    System.out.println(out.append('}'));
  }
}
