// Stage (e)'s paced producer: the Kafka Java client, run as `java -cp "<kafka lib>/*" PacedProducer.java`
// by riskmon/bench/latency.py (single-file source launch: nothing to build or commit).
//
// Why Java: librdkafka sends one ProduceRequest per partition (librdkafka issue #1700). Paced in 5 ms
// ticks over 3 input topics x 4 partitions, that is ~1 600 requests/s at 5k events/s, and the broker
// spent ~0.33 core on them alone, more than on the pipeline's own traffic. The Java client sends one
// request per broker with every ready partition in it (~200/s: one per tick), as the lender's own
// services would; the broker's cost for the same records fell to ~0.12 core (docs/performance.md,
// session 12).
//
// Protocol (stdin/stdout, line based):
//   args:   bootstrap input-file times-file rate tick-ms topic...
//   input:  records of  u8 timed | i32 len + topic | i32 len + key | i32 len + value  (big-endian)
//   out:    "ready" once the producer has every topic's metadata; then waits for a line on stdin
//           "sent N" every 1 000 records; "done T0 N" at the end (T0: System.nanoTime() of the first
//           send, i.e. CLOCK_MONOTONIC on Linux, the clock of Python's time.monotonic_ns())
//           "error MESSAGE" and exit 1 if a send failed
//   times:  one big-endian i64 System.nanoTime() per timed record, taken just before its send()
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class PacedProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String inputFile = args[1];
        String timesFile = args[2];
        double rate = Double.parseDouble(args[3]);
        long tickNs = (long) (Double.parseDouble(args[4]) * 1e6);

        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("acks", "all");
        props.put("linger.ms", "1"); // as the librdkafka harness: a tick's records go out together
        props.put("max.request.size", String.valueOf(2 * 1024 * 1024));
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());
        AtomicReference<Exception> failed = new AtomicReference<>();

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
             DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(inputFile), 1 << 20));
             DataOutputStream times = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(timesFile), 1 << 16));
             BufferedReader control = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            for (int i = 5; i < args.length; i++) {
                producer.partitionsFor(args[i]); // metadata now, not inside the measured window
            }
            System.out.println("ready");
            System.out.flush();
            if (control.readLine() == null) {
                return; // the bench went away
            }
            long t0 = System.nanoTime();
            long sent = 0;
            boolean more = true;
            while (more) {
                long due = (long) ((System.nanoTime() - t0) * rate / 1e9) + 1;
                while (sent < due) {
                    int timed;
                    try {
                        timed = in.readUnsignedByte();
                    } catch (EOFException end) {
                        more = false;
                        break;
                    }
                    String topic = new String(readBytes(in), StandardCharsets.UTF_8);
                    byte[] key = readBytes(in);
                    byte[] value = readBytes(in);
                    if (timed != 0) {
                        times.writeLong(System.nanoTime()); // before send: the decision cannot overtake it
                    }
                    producer.send(new ProducerRecord<>(topic, key, value), (meta, exc) -> {
                        if (exc != null) {
                            failed.compareAndSet(null, exc);
                        }
                    });
                    sent++;
                    if (sent % 1000 == 0) {
                        System.out.println("sent " + sent);
                        System.out.flush();
                    }
                }
                if (failed.get() != null) {
                    break;
                }
                if (more) {
                    long next = (long) (t0 + sent * 1e9 / rate) - System.nanoTime();
                    long sleepNs = Math.max(tickNs, next);
                    Thread.sleep(sleepNs / 1_000_000, (int) (sleepNs % 1_000_000));
                }
            }
            producer.flush();
            times.flush();
            if (failed.get() != null) {
                System.out.println("error " + failed.get());
                System.out.flush();
                System.exit(1);
            }
            System.out.println("done " + t0 + " " + sent);
            System.out.flush();
            control.readLine(); // the bench reads this process's CPU time before it exits
        }
    }

    private static byte[] readBytes(DataInputStream in) throws java.io.IOException {
        byte[] b = new byte[in.readInt()];
        in.readFully(b);
        return b;
    }
}
