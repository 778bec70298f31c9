//! burn draws initial weights from one generator per backend, shared by every thread of the process, so this test
//! has a test binary of its own: nothing else may draw while it checks that a seed fixes a network.

use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::nn::{BackboneConfig, BackboneKind};

#[test]
fn the_same_device_seed_gives_the_same_network() {
    let outputs: Vec<Vec<f32>> = (0..2)
        .map(|_| {
            let device = Device::flex();
            device.seed(5);
            let model = BackboneConfig::new(BackboneKind::Wrn28_2, 1, 10).init(&device.clone().autodiff());
            let x = Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 2 * 28 * 28], [2, 1, 28, 28]), &device);
            model.forward(x.autodiff()).logits.into_data().try_to_vec::<f32>().unwrap()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}
