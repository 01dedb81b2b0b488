// ListenerProbe: the readiness check of stack.sh's secured listeners, with
// Kafka's own Java client. kcat cannot do it: Debian 12's librdkafka (2.0.2)
// sends a SCRAM proof that Kafka 4.x refuses (librdkafka repeats the client
// nonce; fixed in librdkafka 2.6.1), so a SCRAM login needs another client.
//
//   java -cp "<kafka libs>/*" ListenerProbe.java <brokers> <timeout-seconds> \
//        <name> <bootstrap> <client.properties> [<name> <bootstrap> <client.properties>...]
//
// For each listener: log in with the properties (TLS, SASL), list the
// cluster's brokers, and send each broker a request of its own (its
// configuration), so every node's listener is checked, not just one. Retries
// until <brokers> brokers answer or the timeout; exit 0 when every listener
// answered, else 1 with one line per listener that did not on stderr.
import java.io.FileReader;
import java.io.Reader;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.config.ConfigResource;

public class ListenerProbe {
    public static void main(String[] args) throws Exception {
        if (args.length < 5 || (args.length - 2) % 3 != 0) {
            System.err.println("usage: ListenerProbe <brokers> <timeout-seconds> <name> <bootstrap> <client.properties>...");
            System.exit(2);
        }
        int want = Integer.parseInt(args[0]);
        long deadline = System.currentTimeMillis() + 1000L * Long.parseLong(args[1]);
        int failed = 0;
        for (int i = 2; i < args.length; i += 3) {
            String err = probe(args[i + 1], args[i + 2], want, deadline);
            if (err != null) {
                System.err.println(args[i] + " listener " + args[i + 1] + ": " + err);
                failed++;
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    // probe returns null once every broker answered on the listener, else the
    // last problem seen before the deadline.
    static String probe(String bootstrap, String propsFile, int want, long deadline) throws Exception {
        Properties p = new Properties();
        try (Reader r = new FileReader(propsFile)) {
            p.load(r);
        }
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "8000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        String last;
        while (true) {
            try (Admin admin = Admin.create(p)) {
                Collection<Node> nodes = admin.describeCluster().nodes().get();
                if (nodes.size() == want) {
                    List<ConfigResource> each = new ArrayList<>();
                    for (Node n : nodes) {
                        each.add(new ConfigResource(ConfigResource.Type.BROKER, n.idString()));
                    }
                    // A BROKER resource is asked of that very broker.
                    admin.describeConfigs(each).all().get();
                    return null;
                }
                last = nodes.size() + " broker(s), want " + want;
            } catch (ExecutionException e) {
                last = String.valueOf(e.getCause());
            }
            if (System.currentTimeMillis() >= deadline) {
                return last;
            }
            Thread.sleep(500);
        }
    }
}
